"""examples/signal_bot_chart.py runs as partners run it: env vars, symbols, history, live signals."""

from __future__ import annotations

import os
import random
import subprocess
import sys
from pathlib import Path

from chart_fakes import FakeDeployment

ROOT = Path(__file__).resolve().parents[2]
KEY = "twk_" + "e" * 40


def history(n=120, end=1_710_000_000):
    rng, x, out = random.Random(8), 50.0, []
    for i in range(n):
        o = x
        x *= 1 + rng.gauss(0, 0.002)
        out.append({"time": end - (n - i) * 60, "open": o, "high": max(o, x), "low": min(o, x), "close": x})
    return out


def run_bot(deployment, *args, key=KEY):
    env = {**os.environ, "TRADOWIX_CHART_URL": deployment.url, "TRADOWIX_CHART_API_KEY": key}
    return subprocess.run(
        [sys.executable, str(ROOT / "examples" / "signal_bot_chart.py"), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_bot_lists_symbols_loads_history_and_prints_a_signal_per_closed_bar():
    with FakeDeployment(
        {"AAPL-OTC": history(), "BTCUSD-OTC": history()}, key=KEY, bars_per_connection=5
    ) as d:
        result = run_bot(d, "--bars", "3", "--min-confidence", "0")
        subscribes = d.live.subscribes
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "2 symbols: AAPL-OTC, BTCUSD-OTC"
    assert lines[1].startswith("AAPL-OTC: 120 bars of history")
    assert len(lines) == 5 and all(("CALL" in x or "PUT" in x) and "AAPL-OTC" in x for x in lines[2:])
    assert subscribes == [{"type": "subscribe", "symbol": "AAPL-OTC", "timeframe": 60}]


def test_bot_with_a_bad_key_says_so_in_one_line():
    with FakeDeployment({"AAPL-OTC": history()}, key=KEY) as d:
        result = run_bot(d, key="twk_bad")
    assert result.returncode == 1 and result.stderr == "error: API key invalid or disabled\n"


def test_bot_without_the_environment_says_what_to_set_in_one_line():
    # given no TRADOWIX_CHART_URL / TRADOWIX_CHART_API_KEY in the environment
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRADOWIX_")}
    # when the partner runs the example bot
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "signal_bot_chart.py")],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    # then one line says which variable to set, without a traceback
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr == (
        "error: no chart URL: pass base_url or set TRADOWIX_CHART_URL (e.g. https://tradowixapi.site)\n"
    )
