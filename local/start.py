#!/usr/bin/env python3
"""One command for a newcomer: set up .venv and run the local stack with the chart.

python3 local/start.py [--no-browser] [--port 8765] [any flag of `tradowix chart`]
"""

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bootstrap import ROOT, ensure_browser_assets, ensure_venv  # noqa: E402

# [strategy] too: the README's partner commands (signal, live, backtest, the example bot) need it.
python = ensure_venv("local,strategy")
ensure_browser_assets()
os.chdir(ROOT)
os.execv(python, [str(python), "-m", "tradowix_bot.cli", "chart", *sys.argv[1:]])
