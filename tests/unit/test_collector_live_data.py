"""Given a collector streaming EURUSD-OTC (synthetic source, ManualClock), when its link drops
(for a while, or for 0.6 s), it crashes or it stops cleanly, then what a partner reads through
/api/candles (MarketData, the code behind it) and /api/live/status is never wrong: no bar is
presented as closed unless it is the market's own bar, a forming bar is served only while its
writer is alive and linked, and a dropped minute is back as soon as history covers it."""

from __future__ import annotations

import asyncio

import boto3
import pytest
from collector_harness import (
    START,
    Harness,
    assert_continuous,
    assert_market_bars,
    expected,
    wrong_closed_bars,
)
from tradowix_bot.collector import Collector, ManualClock
from tradowix_bot.collector.synthetic import SyntheticSource
from tradowix_bot.server.authn import OPEN
from tradowix_bot.server.market import MarketData
from tradowix_bot.server.state import StateStore
from tradowix_bot.server.store import CandleStore

SYMBOL = "EURUSD-OTC"


def make(aws_env, clock, **kw):
    store = CandleStore(aws_env["CandlesBucket"])
    state = StateStore(aws_env["StateTable"])
    collector = Collector(
        SyntheticSource(clock), store, state, clock=clock, symbols=[SYMBOL], backfill_days=30 / 1440, **kw
    )
    return collector, store, MarketData(store, state, clock=clock.now)


def minute_of(t: float) -> int:
    return int(t) - int(t) % 60


def test_a_dropped_link_never_shows_a_partial_bar_as_closed_and_the_minute_comes_back(aws_env):
    # given a collector streaming, its history repaired
    clock = ManualClock(START)
    collector, store, market = make(aws_env, clock)
    answers = []

    async def scenario():
        run = Harness(clock, collector)
        await run.start()
        await run.advance(60)
        await run.to_second(40)
        # when the link drops at second 40 of a minute and is back 20 s later
        collector.source.drop_link(SYMBOL, 20)
        for _ in range(80):  # a partner reads every second for 80 s
            await run.advance(1, step=1)
            answers.append((clock.now(), market.candles(OPEN, SYMBOL, limit=5)))
        await run.stop()

    asyncio.run(scenario())
    dropped = minute_of(answers[0][0])
    # then no answer ever presented a bar as closed that is not the market's own
    assert [wrong_closed_bars(a, SYMBOL) for _, a in answers] == [[]] * len(answers)
    # and while the link was down, no forming bar was served (its writer was not linked)
    down = [a for now, a in answers if now < dropped + 60]
    assert down and all(a["last_closed"] and a["candles"][-1]["time"] == dropped - 60 for a in down)
    # and the dropped minute is served, right, within 2 s of its end (history covers it then)
    back = [a for now, a in answers if now >= dropped + 62]
    assert all(dropped in [c["time"] for c in a["candles"]] for a in back)
    assert_continuous(store.read(SYMBOL))


def test_a_crashed_collector_leaves_no_bar_presented_as_closed_that_is_wrong(aws_env):
    # given a collector streaming, its history repaired
    clock = ManualClock(START)
    collector, store, market = make(aws_env, clock)
    answers = []

    async def scenario():
        run = Harness(clock, collector)
        await run.start()
        await run.advance(60)
        await run.to_second(30)
        # when it dies on the spot (SIGKILL) mid-minute
        run.crash(collector)
        for _ in range(90):
            await run.advance(1, step=1)
            answers.append((clock.now(), market.candles(OPEN, SYMBOL, limit=5)))

    asyncio.run(scenario())
    crashed = answers[0][0] - 1
    # then no answer presented a partial bar as closed, in all 90 s after the crash
    assert [wrong_closed_bars(a, SYMBOL) for _, a in answers] == [[]] * len(answers)
    # and its forming bar was served (as forming) for at most the record's validity, 6 s
    forming = [now for now, a in answers if not a["last_closed"]]
    assert forming and max(forming) <= crashed + 6


def test_a_clean_stop_withdraws_the_forming_bar_and_reads_as_not_live_at_once(aws_env):
    # given a collector streaming, its history repaired, seen live by partners
    clock = ManualClock(START)
    collector, store, market = make(aws_env, clock)

    async def scenario():
        run = Harness(clock, collector)
        await run.start()
        await run.advance(60)
        await run.to_second(30)
        assert market.live_status(OPEN)["live"] is True
        assert market.candles(OPEN, SYMBOL, limit=2)["last_closed"] is False
        # when it is stopped (SIGTERM) mid-minute
        await run.stop()

    asyncio.run(scenario())
    # then, at once, the status says not live and the answer ends with the last whole minute
    status = market.live_status(OPEN)
    assert status["live"] is False and status["upstream"]["connected"] is False
    answer = market.candles(OPEN, SYMBOL, limit=2)
    assert answer["last_closed"] is True and not wrong_closed_bars(answer, SYMBOL)
    assert answer["candles"][-1]["time"] == minute_of(clock.now()) - 60


def test_a_collector_that_dies_reads_as_not_live_within_three_status_intervals(aws_env):
    clock = ManualClock(START)
    collector, store, market = make(aws_env, clock, status_interval=5)

    async def scenario():
        run = Harness(clock, collector)
        await run.start()
        await run.advance(30)
        assert market.live_status(OPEN)["live"] is True
        # when it dies without a word
        run.crash(collector)
        return await run.until(lambda: not market.live_status(OPEN)["live"], limit=60, step=1)

    # then partners see it as not live within 3 status intervals (15 s), not 90 s
    assert asyncio.run(scenario()) <= 15 + 1


def test_a_link_back_within_0_6_s_keeps_every_minute_and_the_next_one_whole(aws_env):
    # given a collector streaming, its history repaired
    clock = ManualClock(START)
    collector, store, market = make(aws_env, clock)
    seen = []

    async def scenario():
        run = Harness(clock, collector)
        await run.start()
        await run.advance(60)
        await run.to_second(40)
        dropped = minute_of(clock.now())
        repairs = collector.repairs
        # when the link drops at second 40 and is back 0.6 s later
        collector.source.drop_link(SYMBOL, 0.6)
        await run.advance(5, step=0.2)
        seen.append(market.candles(OPEN, SYMBOL, limit=2))  # second 45: the minute goes on forming
        await run.advance(17, step=1)  # second 62
        seen.append(store.read(SYMBOL)[-1])
        await run.advance(59.5, step=0.5)  # second 121.5: the next minute closed from its ticks
        seen.append(store.read(SYMBOL)[-1])
        seen.append(collector.repairs - repairs)
        await run.stop()
        return dropped

    dropped = asyncio.run(scenario())
    forming, after_minute, after_next, repairs = seen
    truth = expected(SYMBOL, dropped, dropped + 120)
    # then the minute went on forming with its own open (not restarted at the reconnect)
    assert forming["last_closed"] is False and forming["candles"][-1]["open"] == truth[0][1]
    assert not wrong_closed_bars(forming, SYMBOL)
    # and within 2 s of its end it is stored, the market's own bar (history covers it then)
    assert tuple(after_minute[:5]) == truth[0]
    # and the next minute was whole: written from its ticks as it closed, with no repair of it
    assert tuple(after_next[:5]) == truth[1]
    assert repairs == 2  # the reconnect's (nothing missing) and the dropped minute's
    bars = store.read(SYMBOL)
    assert_continuous(bars)
    assert_market_bars(SYMBOL, bars)


@pytest.fixture(autouse=True)
def _quiet_boto():
    boto3.set_stream_logger("botocore", level=40)
