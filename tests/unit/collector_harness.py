"""Run collectors on a ManualClock: time moves only when the test moves it, and after each
step the test waits until every collector has done all that step asked of it (ticks handled,
bars written, repairs finished). Minutes of collecting take a fraction of a second, and the
outcome does not depend on how busy the machine is."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from tradowix_bot.collector import Collector, ManualClock
from tradowix_bot.collector.synthetic_market import SyntheticMarket

# 2024-02-01 12:00:20 UTC, 20 s into a minute (the synthetic market starts 2024-01-01: close
# to it, its price walk is quick to compute).
START = 1_706_788_820
MARKET = SyntheticMarket()


class Harness:
    def __init__(self, clock: ManualClock, *collectors: Collector, idle: Callable[[], bool] | None = None):
        self.clock = clock
        self.collectors = list(collectors)
        self.idle = idle or (lambda: True)
        self._runs: dict[Collector, tuple[asyncio.Event, asyncio.Task]] = {}

    async def start(self, collector: Collector | None = None) -> None:
        for c in [collector] if collector else self.collectors:
            if c not in self.collectors:
                self.collectors.append(c)
            stop = asyncio.Event()
            self._runs[c] = (stop, asyncio.create_task(c.run(stop)))
        await self.settle()

    async def settle(self, timeout: float = 30.0) -> None:
        """Wait (real time) until nothing is under way in any running collector."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        quiet = 0
        while quiet < 3:
            for _ in range(20):
                await asyncio.sleep(0)
            running = [c for c, (_, task) in self._runs.items() if not task.done()]
            if any(c.busy() for c in running) or not self.idle():
                quiet = 0
                assert loop.time() < deadline, "the collectors did not settle"
                await asyncio.sleep(0.002)
            else:
                quiet += 1

    async def advance(self, seconds: float, step: float = 5.0) -> None:
        target = self.clock.now() + seconds
        while self.clock.now() < target:
            self.clock.set(min(target, self.clock.now() + step))
            await self.settle()

    async def until(self, condition: Callable[[], bool], limit: float, step: float = 1.0) -> float:
        """Advance until `condition()` holds; returns the clock seconds it took (fails after `limit`)."""
        began = self.clock.now()
        while not condition():
            assert self.clock.now() - began < limit, f"not within {limit} clock seconds"
            await self.advance(step, step)
        return self.clock.now() - began

    async def to_second(self, second: float) -> None:
        """Advance to the next time that is `second` seconds into a minute."""
        now = self.clock.now()
        target = now - now % 60 + second
        if target <= now:
            target += 60
        await self.advance(target - now)

    def crash(self, collector: Collector) -> None:
        """The collector dies on the spot (SIGKILL): nothing released, nothing written."""
        collector.state.release_lease = lambda *a: None
        collector.writer.drain = _nothing_left
        collector._stop = _nothing_to_do
        stop, task = self._runs[collector]
        task.cancel()

    async def stop(self, collector: Collector | None = None) -> None:
        for c in [collector] if collector else list(self._runs):
            stop, task = self._runs[c]
            stop.set()
            c.writer.wake()
            try:
                await asyncio.wait_for(task, 30)
            except asyncio.CancelledError:
                pass


async def _nothing_left(*a, **kw) -> bool:
    return True


async def _nothing_to_do(*a, **kw) -> None:
    return None


def expected(symbol: str, start: int, end: int) -> list[tuple]:
    """The oracle: the market's own 1m bars, computed from its ticks."""
    return [tuple(b) for b in MARKET.bars(symbol, start, end)]


def assert_continuous(bars) -> None:
    times = [b[0] for b in bars]
    assert times == sorted(set(times)), "duplicate or unordered minutes"
    assert all(b - a == 60 for a, b in zip(times, times[1:], strict=False)), "a minute is missing"


def as_tuple(candle: dict) -> tuple:
    return tuple(candle[k] for k in ("time", "open", "high", "low", "close"))


def wrong_closed_bars(answer: dict, symbol: str, market=MARKET) -> list[dict]:
    """The bars of a /api/candles answer (1m) that it presents as closed yet differ from the
    market's own bars: every bar but a last one marked `last_closed: false`."""
    candles = answer["candles"]
    closed = candles if answer["last_closed"] else candles[:-1]
    wrong = []
    for c in closed:
        truth = market.bar(symbol, c["time"])
        if truth is None or as_tuple(c) != tuple(truth):
            wrong.append(c)
    return wrong


def partner_get(path: str, query: dict | None = None, headers: dict | None = None):
    """GET through the partner API as API Gateway calls it, on an event loop of its own (Mangum
    runs one; the thread's may be closed by an earlier asyncio.run, or be running)."""
    from unit_helpers import get

    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        return get(path, query, headers)
    finally:
        asyncio.set_event_loop(None)
        loop.close()


def assert_market_bars(symbol: str, bars, market=MARKET) -> None:
    """Every stored bar is the market's own: OHLC from its ticks, and where the bar carries a
    volume (built from the ticks), the number of the minute's ticks."""
    assert [tuple(b[:5]) for b in bars] == [
        tuple(b) for b in market.bars(symbol, bars[0][0], bars[-1][0] + 60)
    ]
    for b in bars:
        assert len(b) == 5 or b[5] == len(market.minute_ticks(symbol, b[0])), b
