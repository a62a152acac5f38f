#!/usr/bin/env python3
"""One command to set up and run the whole test suite:

    python3 tests/run.py [pytest arguments]

Creates .venv with the [dev] extra, then runs pytest. Integration tests start their own
local stack on 127.0.0.1; nothing else needs to be running.
"""

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "local"))
from bootstrap import ROOT, ensure_browser_assets, ensure_chromium, ensure_venv  # noqa: E402

python = ensure_venv("dev")
ensure_browser_assets()
ensure_chromium()
os.chdir(ROOT)
os.execv(python, [str(python), "-m", "pytest", *sys.argv[1:]])
