"""Fault: the WebSocket gateway freezes (SIGSTOP of the local stack's process, which serves the
gateway, @connections and the HTTP API) while a partner's bot streams closed bars, then
resumes (SIGCONT).

Given a local stack collecting from a stand-in upstream on a compressed clock (a market minute
takes 3 wall seconds) and a bot on ChartApiClient, when the gateway is frozen across several
minute closes and then resumes, then the bot has every closed bar once, in order, with the
open/high/low/close computed here from the stand-in's ticks: 0 lost, 0 duplicated, 0 wrong.
Prints the figures (seconds until the bot has every bar again; lost, duplicated, wrong)."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from polling import eventually  # noqa: E402
from upstream_standin import StandinUpstream  # noqa: E402

pytestmark = pytest.mark.integration

SPEED = 20.0  # market seconds per wall second: a minute closes every 3 s
SYMBOL = "BTCUSD-OTC"
FREEZE_WALL_SECONDS = 9.0  # three market minutes close while the gateway is frozen


def ohlc_from_ticks(upstream: StandinUpstream, minute: int) -> tuple:
    """The bar of `minute` computed here, straight from the ticks the stand-in sends."""
    prices = [price for _, price in upstream.market.minute_ticks(SYMBOL, minute)]
    return (prices[0], max(prices), min(prices), prices[-1])


def test_a_frozen_gateway_costs_the_bot_no_closed_bar(tmp_path, stacks):
    from tradowix_bot.client.chart_client import ChartApiClient, LiveOptions
    from tradowix_bot.collector import Clock

    start_stack, stop_stack = stacks
    anchor = time.time()
    upstream = StandinUpstream(Clock(SPEED, anchor)).start()
    env = {
        "TRADOWIX_SESSION_TOKEN": "good-token",
        "TRADOWIX_WS_URL": upstream.url,
        "TRADOWIX_CLOCK_SPEED": str(SPEED),
        "TRADOWIX_CLOCK_ANCHOR": str(anchor),
    }
    stack = start_stack(tmp_path / "data", "--no-archive", env=env)
    got: list[dict] = []
    arrived: list[float] = []
    states: list[tuple[float, str]] = []
    stop = threading.Event()
    failures: list[BaseException] = []
    try:
        # given a bot streaming closed 1m bars through the stack's gateway
        eventually(
            lambda: (
                httpx.get(f"{stack.api_url}/api/candles", params={"symbol": SYMBOL, "limit": 1}).status_code
                == 200
            ),
            60,
            "bars collected from the stand-in upstream",
            interval=0.5,
        )
        client = ChartApiClient(stack.api_url, timeout=2.0)
        options = LiveOptions(
            keepalive=1.0, pong_timeout=1.0, backoff=0.2, max_backoff=1.0, max_backoff_unreachable=1.0
        )

        def run():
            try:
                client.subscribe_live_sync(
                    lambda msg: (got.append(msg), arrived.append(time.monotonic())),
                    symbol=SYMBOL,
                    timeframe=60,
                    stop=stop,
                    options=options,
                    on_state=lambda state: states.append((time.monotonic(), state)),
                )
            except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
                failures.append(exc)

        runner = threading.Thread(target=run, daemon=True)
        runner.start()

        def closes() -> list[dict]:
            return [m for m in got if m.get("type") == "bar" and m.get("closed")]

        def wait_for_closes(n: int, seconds: float) -> None:
            def closed() -> bool:
                assert not failures, failures
                return len(closes()) >= n

            eventually(closed, seconds, f"{n} closed bars at the bot")

        wait_for_closes(2, 60)
        # when the gateway freezes across three minute closes, then resumes
        os.kill(stack.process.pid, signal.SIGSTOP)
        frozen_at = time.monotonic()
        try:
            time.sleep(FREEZE_WALL_SECONDS)
        finally:
            os.kill(stack.process.pid, signal.SIGCONT)
        resumed_at = time.monotonic()
        last_before = max(c["candle"]["time"] for c in closes())
        market_now = Clock(SPEED, anchor).now()
        due = int(market_now) - int(market_now) % 60  # every minute before this one has closed
        # then the bot gets every minute that closed while frozen (and after) once the gateway is back

        def caught_up() -> bool:
            assert not failures, failures
            return max(c["candle"]["time"] for c in closes()) >= due + 60 * 2

        eventually(caught_up, 60, "the stream back after the gateway resumed")
        # the first moment the bot held every minute that closed before the resume
        held: set[int] = set()
        whole_again = None
        for msg, at in zip(got, arrived, strict=True):
            if msg.get("type") == "bar" and msg.get("closed"):
                held.add(msg["candle"]["time"])
            if whole_again is None and at >= resumed_at and set(range(last_before, due, 60)) <= held:
                whole_again = at
        stop.set()
        runner.join(15)
        assert not failures, failures

        times = [c["candle"]["time"] for c in closes()]
        first, last = times[0], times[-1]
        expected = list(range(first, last + 60, 60))
        lost = sorted(set(expected) - set(times))
        duplicated = len(times) - len(set(times))
        wrong = [
            c["candle"]["time"]
            for c in closes()
            if (c["candle"]["open"], c["candle"]["high"], c["candle"]["low"], c["candle"]["close"])
            != pytest.approx(ohlc_from_ticks(upstream, c["candle"]["time"]))
        ]
        noticed = next((t for t, s in states if t > frozen_at and s == "reconnecting"), None)
        print(
            f"\nfrozen gateway: {FREEZE_WALL_SECONDS:.0f} s frozen ({FREEZE_WALL_SECONDS * SPEED / 60:.0f} market minutes); "
            f"dead connection noticed after {noticed - frozen_at:.1f} s; "
            f"every bar again {whole_again - resumed_at:.1f} s after the resume; "
            f"closed bars {len(times)} ({first}..{last}), lost {len(lost)}, duplicated {duplicated}, wrong {len(wrong)}"
            if noticed and whole_again
            else "\nfrozen gateway: the client never noticed"
        )
        assert noticed is not None and whole_again is not None, states
        assert times == sorted(times) and (lost, duplicated, wrong) == ([], 0, [])
        assert last_before < due  # the freeze did span minute closes
    finally:
        stop.set()
        stop_stack(stack)
        upstream.stop()
