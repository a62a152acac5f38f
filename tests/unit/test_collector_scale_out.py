"""Given several collectors sharing one store and state table (the design's leases), when they
run side by side and one of them dies, then each writes its share of the symbols, partners see
every collector's symbols in /api/live/status, and a dead collector's symbols are taken over
within the lease bound with no minute lost and none written twice."""

from __future__ import annotations

import asyncio
import math

import boto3
import pytest
from collector_harness import START, Harness, assert_continuous
from tradowix_bot.collector import Collector, ManualClock
from tradowix_bot.collector.synthetic import SyntheticSource
from tradowix_bot.collector.synthetic_market import SyntheticMarket
from tradowix_bot.server.authn import OPEN
from tradowix_bot.server.market import MarketData
from tradowix_bot.server.state import StateStore
from tradowix_bot.server.store import CandleStore
from tradowix_bot.symbols import SymbolInfo

LEASE = 30.0
INFOS = tuple(SymbolInfo(f"S{i:02d}-OTC", f"S{i:02d}", "other", 4, 10.0 + i, 0.0004) for i in range(12))


def make(aws_env, clock, owner, symbols, infos=INFOS, backfill_days=10 / 1440):
    store = CandleStore(aws_env["CandlesBucket"])
    state = StateStore(aws_env["StateTable"])
    collector = Collector(
        SyntheticSource(clock, infos),
        store,
        state,
        clock=clock,
        symbols=symbols,
        owner=owner,
        lease_seconds=LEASE,
        backfill_days=backfill_days,
    )
    return collector, store, state


def test_two_collectors_with_different_symbols_both_show_in_live_status(aws_env):
    # given two collectors, each with its own symbols
    clock = ManualClock(START)
    first, store, state = make(aws_env, clock, "first", ["S00-OTC", "S01-OTC"])
    second, _, _ = make(aws_env, clock, "second", ["S02-OTC"])
    market = MarketData(store, state, clock=clock.now)

    async def scenario():
        run = Harness(clock, first, second)
        await run.start()
        await run.advance(30)
        status = market.live_status(OPEN)
        await run.stop()
        return status

    # when a partner reads the live status
    status = asyncio.run(scenario())
    # then it merges both collectors: every symbol is there, live
    assert status["live"] is True and status["upstream"]["collectors"] == 2
    symbols = status["upstream"]["symbols"]
    assert set(symbols) == {"S00-OTC", "S01-OTC", "S02-OTC"}
    assert {s["state"] for s in symbols.values()} == {"live"}


def test_three_collectors_share_the_symbols_and_take_over_a_dead_ones_without_loss(aws_env):
    # given three collectors for the same 12 symbols (tests/faults runs 30 in processes)
    clock = ManualClock(START)
    names = [i.symbol for i in INFOS]
    collectors = [make(aws_env, clock, f"c{n}", names)[0] for n in range(3)]
    store = collectors[0].store
    market = MarketData(store, collectors[0].state, clock=clock.now)
    shares = {}

    async def scenario():
        run = Harness(clock, *collectors)
        await run.start()
        await run.advance(2 * LEASE, step=2)  # a few lease rounds: they settle on their shares
        shares["before"] = {c.owner: set(c.tracked) for c in collectors}
        await run.advance(30, step=2)
        # when one of them dies (SIGKILL: no lease released)
        dead = collectors[0]
        run.crash(dead)
        orphans = set(dead.tracked)
        took = await run.until(
            lambda: orphans <= set(collectors[1].tracked) | set(collectors[2].tracked),
            limit=3 * LEASE,
            step=1,
        )
        shares["after"] = {c.owner: set(c.tracked) for c in collectors[1:]}
        await run.advance(70, step=2)
        status = market.live_status(OPEN)
        await run.stop(collectors[1])
        await run.stop(collectors[2])
        return took, status

    took, status = asyncio.run(scenario())
    # then, while all three ran, each wrote its share and together they covered every symbol once
    before = shares["before"]
    assert all(0 < len(s) <= math.ceil(len(names) / 3) for s in before.values())
    assert sorted(sum((sorted(s) for s in before.values()), [])) == sorted(names)
    # and the dead one's symbols were taken over within the lease bound (the lease, plus one
    # renewal round of the survivors)
    assert took <= LEASE + LEASE / 3 + 1
    after = shares["after"]
    assert set().union(*after.values()) == set(names) and not set.intersection(*after.values())
    assert status["upstream"]["collectors"] == 2 and len(status["upstream"]["symbols"]) == len(names)
    # and every symbol's stored minutes are the market's own: none lost, none twice
    market_oracle = SyntheticMarket(INFOS)
    for symbol in names:
        bars = store.read(symbol)
        assert_continuous(bars)
        assert [tuple(b[:5]) for b in bars] == [
            tuple(b) for b in market_oracle.bars(symbol, bars[0][0], bars[-1][0] + 60)
        ], symbol
        assert bars[-1][0] >= int(clock.now()) - int(clock.now()) % 60 - 2 * 60


@pytest.fixture(autouse=True)
def _quiet_boto():
    boto3.set_stream_logger("botocore", level=40)


def test_a_collector_whose_lease_ran_out_while_it_stalled_does_not_overwrite_the_new_writer(aws_env):
    from tradowix_bot.errors import Unavailable

    # given a collector writing a symbol, and a second one waiting for its lease
    clock = ManualClock(START)
    first, store, state = make(aws_env, clock, "first", ["S00-OTC"])
    second, _, _ = make(aws_env, clock, "second", ["S00-OTC"])
    s3_down = {"on": False}
    real_write = first.store.write

    def write(*args, **kw):
        if s3_down["on"]:
            raise Unavailable("the candle store (S3) cannot be reached right now")
        return real_write(*args, **kw)

    first.store.write = write

    async def stall():  # its lease renewals stop coming (a paused process, a starved loop)
        return None

    async def scenario():
        run = Harness(clock, first)
        await run.start()
        await run.advance(90)
        await run.start(second)
        # when the first stalls: no renewals, and its S3 writes fail (closed bars wait in memory)
        first._balance = stall
        s3_down["on"] = True
        await run.advance(60)
        # and its link goes too; the second takes the symbol over once the lease ran out
        first.source.drop_link("S00-OTC", 10_000)
        await run.until(lambda: "S00-OTC" in second.tracked, limit=3 * LEASE)
        await run.advance(120)
        # and then the first's S3 comes back (5 s into a minute: the second's next write is 55 s
        # away; the first's retry at most 30 s)
        await run.to_second(5)
        s3_down["on"] = False
        await run.advance(35)
        bars = store.read("S00-OTC")
        await run.stop()
        return bars

    bars = asyncio.run(scenario())
    # then the first wrote nothing over the second's minutes: the series is whole and right
    assert_continuous(bars)
    market = SyntheticMarket(INFOS)
    assert [tuple(b[:5]) for b in bars] == [
        tuple(b) for b in market.bars("S00-OTC", bars[0][0], bars[-1][0] + 60)
    ]
    now = int(clock.now())
    assert bars[-1][0] >= now - now % 60 - 60


def test_a_collector_restarted_under_its_own_name_takes_its_leases_back_at_once(aws_env):
    # given a collector holding its symbols' leases, killed (nothing released)
    clock = ManualClock(START)
    names = ["S00-OTC", "S01-OTC"]
    first, _, _ = make(aws_env, clock, "local-stack", names)

    async def scenario():
        run = Harness(clock, first)
        await run.start()
        await run.advance(10, step=2)
        run.crash(first)
        # when it is started again under the same owner (the local stack's restart)
        again, _, _ = make(aws_env, clock, "local-stack", names)
        await run.start(again)
        took = await run.until(lambda: set(again.tracked) == set(names), limit=LEASE, step=1)
        await run.stop(again)
        return took

    # then it writes its symbols again at once, not after its old leases ran out
    assert asyncio.run(scenario()) <= 1


def test_closed_bars_waiting_when_the_state_store_cost_the_lease_are_written_once_it_is_back(aws_env):
    from tradowix_bot.errors import Unavailable

    # given a collector that backfills nothing (`chart --no-archive`): a minute it closed and did
    # not store is lost unless it writes it itself
    clock = ManualClock(START)
    collector, store, state = make(aws_env, clock, "local-stack", ["S00-OTC"], backfill_days=0)
    down = {"s3": False, "dynamodb": False}
    real_write, real_lease = store.write, state.acquire_lease

    def write(*args, **kw):
        if down["s3"]:
            raise Unavailable("the candle store (S3) cannot be reached right now")
        return real_write(*args, **kw)

    def acquire_lease(*args, **kw):
        if down["dynamodb"]:
            raise Unavailable("the state store (DynamoDB) cannot be reached right now")
        return real_lease(*args, **kw)

    store.write, state.acquire_lease = write, acquire_lease

    async def scenario():
        run = Harness(clock, collector)
        await run.start()
        await run.advance(120, step=2)
        # when S3 is out (closed bars wait in memory), then DynamoDB too for longer than a lease
        # (it gives the symbol up, with those bars still waiting), then both come back
        await run.to_second(10)
        down["s3"] = True
        await run.advance(150, step=2)
        waiting = len(collector.writer.pending.get("S00-OTC", {}))
        down["dynamodb"] = True
        await run.advance(40, step=2)
        given_up = "S00-OTC" not in collector.tracked
        down["s3"] = down["dynamodb"] = False
        await run.until(lambda: "S00-OTC" in collector.tracked, limit=LEASE, step=1)
        await run.advance(130, step=2)
        bars = store.read("S00-OTC")
        await run.stop()
        return waiting, given_up, bars

    waiting, given_up, bars = asyncio.run(scenario())
    assert waiting >= 2 and given_up
    # then the minutes it closed meanwhile are stored once it has the lease back: none lost
    assert_continuous(bars)
    market = SyntheticMarket(INFOS)
    assert [tuple(b[:5]) for b in bars] == [
        tuple(b) for b in market.bars("S00-OTC", bars[0][0], bars[-1][0] + 60)
    ]
