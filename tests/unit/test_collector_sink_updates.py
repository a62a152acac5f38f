"""Given the collector feeding the live fan-out (a sink), when ticks arrive together, then the
fan-out gets the latest forming bar of each symbol once per hand-over (not one call per tick:
each call wakes the fan-out's thread, which cost more CPU than the fan-out's own work at real
time), every close at once and in order, and never a forming bar of a minute after its close."""

from __future__ import annotations

import asyncio

from collector_harness import START, Harness
from tradowix_bot.collector import Collector, ManualClock
from tradowix_bot.collector.synthetic import SyntheticSource
from tradowix_bot.server.state import StateStore
from tradowix_bot.server.store import CandleStore

SYMBOLS = ["BTCUSD-OTC", "EURUSD-OTC"]


class RecordingSink:
    def __init__(self, clock):
        self.clock = clock
        self.calls: list[tuple[float, str, tuple, bool]] = []

    def on_bar(self, symbol: str, bar: tuple, closed: bool) -> None:
        self.calls.append((self.clock.now(), symbol, bar, closed))


def test_ticks_that_arrive_together_reach_the_fan_out_as_one_update_per_symbol(aws_env):
    # given a collector with a sink, its clock moved 5 s at a time (about 5 ticks per symbol
    # arrive together each time)
    clock = ManualClock(START)
    sink = RecordingSink(clock)
    collector = Collector(
        SyntheticSource(clock),
        CandleStore(aws_env["CandlesBucket"]),
        StateStore(aws_env["StateTable"]),
        symbols=SYMBOLS,
        clock=clock,
        backfill_days=10 / 1440,
        sinks=[sink],
    )
    ticks = {"n": 0}
    original = collector._on_tick

    def counting(t, tick):
        ticks["n"] += 1
        original(t, tick)

    collector._on_tick = counting
    steps = 36  # 3 minutes

    async def scenario():
        run = Harness(clock, collector)
        await run.start()
        for _ in range(steps):
            await run.advance(5, 5)
        await run.stop()

    asyncio.run(scenario())
    forming = [c for c in sink.calls if not c[3]]
    closes = [c for c in sink.calls if c[3]]
    # then forming updates: at most one per symbol per step (the latest), far fewer than ticks
    assert ticks["n"] > 4 * steps * len(SYMBOLS)
    for symbol in SYMBOLS:
        assert 0 < len([c for c in forming if c[1] == symbol]) <= steps + 1
    # and every minute's close went out, in order, each after the forming updates of its minute
    for symbol in SYMBOLS:
        calls = [c for c in sink.calls if c[1] == symbol]
        closed_minutes = [c[2][0] for c in calls if c[3]]
        assert closed_minutes == sorted(closed_minutes) and len(closed_minutes) >= 2
        last_closed = float("-inf")
        for _, _, bar, closed in calls:
            if closed:
                last_closed = max(last_closed, bar[0])
            else:
                assert bar[0] > last_closed, "a forming update of a minute already closed"
    assert {c[1] for c in closes} == set(SYMBOLS)
