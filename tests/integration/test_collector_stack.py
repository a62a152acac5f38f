"""Given the local stack (`chart --no-browser`), when partners read candles, then the collector
child it runs has built 7 days of history and streams a forming bar that moves within
seconds; when the collector is SIGKILLed, the stack restarts it and the series goes on."""

from __future__ import annotations

import os
import signal
import time

import httpx
import pytest

pytestmark = pytest.mark.integration


def newest(stack, symbol="EURUSD-OTC"):
    r = httpx.get(stack.api_url + "/api/candles", params={"symbol": symbol, "limit": 3}, timeout=10)
    assert r.status_code == 200, r.text
    return r.json()


def wait_for_change(stack, before, timeout=6.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        now = newest(stack)
        if now["candles"][-1] != before["candles"][-1]:
            return now
        time.sleep(0.2)
    raise AssertionError(f"the forming bar did not move in {timeout}s: {before['candles'][-1]}")


def test_history_is_built_and_the_forming_bar_moves(local_stack):
    r = httpx.get(local_stack.api_url + "/api/candles", params={"symbol": "BTCUSD-OTC"}, timeout=30)
    bars = r.json()["candles"]
    assert len(bars) >= 7 * 1440
    times = [b["time"] for b in bars]
    assert all(b - a == 60 for a, b in zip(times, times[1:], strict=False))
    first = newest(local_stack)
    deadline = time.monotonic() + 3  # in a minute's first second the forming bar may not exist yet
    while first["last_closed"] and time.monotonic() < deadline:
        time.sleep(0.2)
        first = newest(local_stack)
    assert first["last_closed"] is False  # the newest bar is the forming one
    wait_for_change(local_stack, first)
    status = httpx.get(local_stack.api_url + "/api/live/status", timeout=10).json()
    assert status["live"] and status["upstream"]["source"] == "synthetic"


def test_a_killed_collector_is_restarted_by_the_stack(local_stack):
    pid_file = local_stack.data_dir / "collector.pid"
    old = int(pid_file.read_text())
    os.kill(old, signal.SIGKILL)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if pid_file.exists() and pid_file.read_text().strip() not in ("", str(old)):
            break
        time.sleep(0.2)
    else:
        raise AssertionError("the stack did not restart its collector")
    before = newest(local_stack)
    wait_for_change(local_stack, before, timeout=20)
    assert "collector exited with -9; restarting" in local_stack.log()
