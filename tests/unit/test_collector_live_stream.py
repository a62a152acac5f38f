"""Given the stand-in upstream, when the owner streams live straight from it with the session
token (`tradowix live SYM --token`), then history comes first and closed bars equal the upstream's."""

from __future__ import annotations

import asyncio

import pytest
from tradowix_bot.collector.live import stream_messages
from tradowix_bot.collector.sources import AuthFailed, Tick
from tradowix_bot.collector.synthetic_market import SyntheticMarket
from tradowix_bot.collector.tradowix import TradowixSource


async def first_messages(source, clock, count: int, timeframe: int) -> list[dict]:
    out = []
    messages = stream_messages(source, ["EURUSD-OTC"], timeframe, clock)
    try:
        async for msg in messages:
            out.append(msg)
            if len(out) >= count:
                return out
    finally:
        await messages.aclose()
        await source.close()
    return out


def test_history_then_closed_bars_equal_the_upstream(upstream):
    # given: the owner's token and a 2-minute timeframe
    source = TradowixSource(upstream.url, "good-token", upstream.clock, ping_interval=1.0)
    # when: the stream runs for history + 4 bar messages (time compressed 30x)
    msgs = asyncio.run(asyncio.wait_for(first_messages(source, upstream.clock, 5, 120), 60))
    # then: history first, resampled to 120 s, then bars of the same timeframe
    assert msgs[0]["type"] == "history" and msgs[0]["candles"]
    assert all(c["time"] % 120 == 0 for c in msgs[0]["candles"])
    bars = msgs[1:]
    assert {m["type"] for m in bars} == {"bar"} and all(m["timeframe"] == 120 for m in bars)
    # and each closed 2m bar equals the upstream's own prices over its two minutes
    market = SyntheticMarket()
    closed = [m for m in bars if m["closed"]]
    assert closed, "a 2m bar should have closed within four closed minutes"
    for m in closed:
        t = m["candle"]["time"]
        minutes = market.bars("EURUSD-OTC", t, t + 120)
        # (its first minute may have started before the link, so only the close is exact)
        assert m["candle"]["close"] == minutes[-1].close
        assert m["candle"]["high"] <= max(b.high for b in minutes)
        assert m["candle"]["low"] >= min(b.low for b in minutes)


def test_a_refused_token_is_an_error_not_a_hang(upstream):
    source = TradowixSource(upstream.url, "expired-token", upstream.clock, auth_timeout=2.0)
    with pytest.raises(AuthFailed):
        asyncio.run(asyncio.wait_for(first_messages(source, upstream.clock, 1, 60), 30))


class QueuedSource:
    """A source whose ticks are already queued when the stream reads them (a busy machine)."""

    def __init__(self, ticks: list[Tick]):
        self.events: asyncio.Queue = asyncio.Queue()
        for tick in ticks:
            self.events.put_nowait(tick)

    async def start(self) -> None:
        pass

    async def history(self, symbol, older_than, minutes):
        return []

    async def watch(self, symbol) -> None:
        pass


class CompressedClockAt:
    """A 30x clock stopped at `now`: 2 wall seconds of grace are a whole market minute."""

    speed = 30.0

    def __init__(self, now: float):
        self._now = now

    def now(self) -> float:
        return self._now

    def slack(self, wall_seconds: float) -> float:
        return wall_seconds * self.speed


def test_a_minute_is_not_closed_while_its_last_ticks_wait_in_the_queue():
    # given a 30x clock 2.5 market seconds past the end of minute M, and M's last two ticks
    # still queued behind its first (the machine was busy), then a tick of the next minute
    m = 1_790_000_040 - 1_790_000_040 % 60
    ms = lambda t: int(t * 1000)  # noqa: E731
    ticks = [Tick("EURUSD-OTC", 1.0, ms(m + 58)), Tick("EURUSD-OTC", 2.0, ms(m + 59.5))]
    ticks.append(Tick("EURUSD-OTC", 3.0, ms(m + 61)))
    source = QueuedSource(ticks)

    async def first_bar() -> dict:
        messages = stream_messages(source, ["EURUSD-OTC"], 60, CompressedClockAt(m + 62.5))
        try:
            assert (await messages.__anext__())["type"] == "history"
            return await messages.__anext__()
        finally:
            await messages.aclose()

    # when the stream reads them
    bar = asyncio.run(asyncio.wait_for(first_bar(), 10))
    # then minute M closes with its last tick's price, not the first one's
    assert bar["closed"] is True and bar["candle"]["time"] == m
    assert (bar["candle"]["open"], bar["candle"]["close"]) == (1.0, 2.0)
