"""Given the local stack (`chart --no-browser`), when partners read candles, then the collector
child it runs has built 7 days of history and streams a forming bar that moves within
seconds; when the collector is SIGKILLed, the stack restarts it and the series goes on."""

from __future__ import annotations

import os
import signal

import httpx
import pytest
from polling import eventually

pytestmark = pytest.mark.integration


def newest(stack, symbol="EURUSD-OTC"):
    r = httpx.get(stack.api_url + "/api/candles", params={"symbol": symbol, "limit": 3}, timeout=10)
    assert r.status_code == 200, r.text
    return r.json()


def moved(stack, before, within=20.0):
    """The newest answer once its last bar differs from `before`'s (a tick moved it, or a minute began)."""
    return eventually(
        lambda: (now := newest(stack))["candles"][-1] != before["candles"][-1] and now,
        within,
        f"the forming bar moving (was {before['candles'][-1]})",
        interval=0.2,
    )


def test_history_is_built_and_the_forming_bar_moves(local_stack):
    # given: the stack's collector built history at start
    r = httpx.get(local_stack.api_url + "/api/candles", params={"symbol": "BTCUSD-OTC"}, timeout=30)
    bars = r.json()["candles"]
    # then: a week of 1m bars without a hole
    assert len(bars) >= 7 * 1440
    times = [b["time"] for b in bars]
    assert all(b - a == 60 for a, b in zip(times, times[1:], strict=False))
    # and the newest bar is the forming one (in a minute's first second it may not exist yet)
    first = eventually(
        lambda: (answer := newest(local_stack))["last_closed"] is False and answer,
        10,
        "a forming bar served",
        interval=0.2,
    )
    # and when ticks come, it moves
    moved(local_stack, first)
    status = httpx.get(local_stack.api_url + "/api/live/status", timeout=10).json()
    assert status["live"] and status["upstream"]["source"] == "synthetic"


def test_a_killed_collector_is_restarted_by_the_stack(local_stack):
    # given: the stack's collector
    pid_file = local_stack.data_dir / "collector.pid"
    old = int(pid_file.read_text())
    # when: it is SIGKILLed
    os.kill(old, signal.SIGKILL)
    # then: the stack starts another one, says so, and the series goes on
    eventually(
        lambda: pid_file.exists() and pid_file.read_text().strip() not in ("", str(old)),
        30,
        "the stack restarting its collector",
        interval=0.2,
    )
    # (its leases, in the same owner's name, taken back at once rather than after they run out:
    # a forming bar left by the old one, or a closed minute, could otherwise pass for "moving")
    eventually(
        lambda: (
            local_stack.log().split("collector exited with -9")[-1].count('"message":"lease acquired"') >= 7
        ),
        20,
        "the new collector taking back the 7 symbols' leases",
        interval=0.2,
    )
    moved(local_stack, newest(local_stack))
    assert "collector exited with -9; restarting" in local_stack.log()
