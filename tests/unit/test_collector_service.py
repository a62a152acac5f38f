"""Given the collector on the synthetic source against the emulated store, its time moved by
the test (ManualClock), when minutes pass, then every closed minute lands in S3 once, the
forming bar is readable, nothing is lost through S3 outages or DynamoDB throttling, and
leases keep one writer."""

from __future__ import annotations

import asyncio
import time

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from botocore.exceptions import EndpointConnectionError
from collector_harness import START, Harness, assert_continuous, assert_market_bars, expected
from tradowix_bot.collector import Collector, ManualClock
from tradowix_bot.collector.synthetic import SyntheticSource
from tradowix_bot.server import aws
from tradowix_bot.server.authn import OPEN
from tradowix_bot.server.market import MarketData
from tradowix_bot.server.state import StateStore
from tradowix_bot.server.store import CandleStore

SYMBOLS = ["BTCUSD-OTC", "EURUSD-OTC"]


class RecordingSink:
    def __init__(self):
        self.calls: list[tuple[str, tuple, bool]] = []

    def on_bar(self, symbol: str, bar: tuple, closed: bool) -> None:
        self.calls.append((symbol, bar, closed))


def make(aws_env, clock, **kw):
    store = CandleStore(aws_env["CandlesBucket"])
    state = StateStore(aws_env["StateTable"])
    kw.setdefault("symbols", SYMBOLS)
    kw.setdefault("backfill_days", 30 / 1440)  # 30 minutes keep the tests quick
    kw.setdefault("lease_seconds", 30.0)
    return Collector(SyntheticSource(clock), store, state, clock=clock, **kw), store, state


def test_closed_minutes_match_the_ticks_and_forming_bar_is_served(aws_env):
    # given a collector streaming two symbols
    clock = ManualClock(START)
    sink = RecordingSink()
    collector, store, state = make(aws_env, clock, sinks=[sink])
    market = MarketData(store, state, clock=clock.now)

    async def scenario():
        run = Harness(clock, collector)
        await run.start()
        # when 4 minutes pass
        await run.advance(130)
        mid_minute = market.candles(OPEN, "BTCUSD-OTC", limit=2)
        await run.advance(110)
        await run.stop()
        return mid_minute

    answer = asyncio.run(scenario())
    # then the stored series is the synthetic market's, continuous, back to the backfill floor,
    # up to the last minute that closed
    now = int(clock.now())
    for symbol in SYMBOLS:
        bars = store.read(symbol)
        assert_continuous(bars)
        assert_market_bars(symbol, bars)
        assert bars[-1][0] == now - now % 60 - 60 and bars[0][0] <= START - 29 * 60
    # and the REST answer mid-minute carried the forming bar, newer than the last stored minute
    assert answer["last_closed"] is False
    forming = answer["candles"][-1]
    minute = forming["time"]
    assert minute == (START + 130) - (START + 130) % 60
    market_bar = expected("BTCUSD-OTC", minute, minute + 60)[0]
    assert forming["open"] == market_bar[1]
    # and the sink saw forming updates and closes
    assert any(c[2] for c in sink.calls) and any(not c[2] for c in sink.calls)
    assert {c[0] for c in sink.calls} == set(SYMBOLS)


def test_minutes_built_from_ticks_store_their_tick_count_and_history_bars_none(aws_env):
    # given a collector streaming EURUSD-OTC from 20 s into a minute
    clock = ManualClock(START)
    collector, store, state = make(aws_env, clock, symbols=["EURUSD-OTC"])
    market = MarketData(store, state, clock=clock.now)

    async def scenario():
        run = Harness(clock, collector)
        await run.start()
        # when three more minutes pass
        await run.advance(190)
        forming = state.forming_bar("EURUSD-OTC", clock.now())
        await run.stop()
        return forming

    forming = asyncio.run(scenario())
    bars = store.read("EURUSD-OTC")
    first_whole = START - START % 60 + 60  # the minute the stream started in is partial
    # then the minutes from the ticks carry their tick count; repaired ones (history) none
    assert {len(b) for b in bars if b[0] < first_whole} == {5}
    whole = [b for b in bars if b[0] >= first_whole]
    assert len(whole) == 2 and {len(b) for b in whole} == {6}
    assert_market_bars("EURUSD-OTC", bars)  # (each volume is the market's tick count)
    # and the forming bar has its count so far
    assert len(forming) == 6 and 0 < forming[5] <= len(expected_ticks("EURUSD-OTC", forming[0]))
    # and answers mixing both stay readable, resampled too
    assert market.candles(OPEN, "EURUSD-OTC", timeframe=300)["count"] >= 7


def expected_ticks(symbol, minute):
    from collector_harness import MARKET

    return MARKET.minute_ticks(symbol, minute)


def test_s3_unavailable_for_a_while_buffers_bars_and_writes_them_all_later(aws_env):
    # given a collector whose S3 PUTs fail for 3 minutes
    clock = ManualClock(START)
    collector, store, state = make(aws_env, clock, symbols=["EURUSD-OTC"])
    failing = {"on": False, "refused": 0}

    def refuse(**kwargs):
        if failing["on"]:
            failing["refused"] += 1
            raise EndpointConnectionError(endpoint_url="http://s3.test")

    aws.client("s3").meta.events.register("before-call.s3.PutObject", refuse)

    async def scenario():
        run = Harness(clock, collector)
        await run.start()
        await run.advance(5)  # backfilled
        failing["on"] = True
        await run.advance(180)
        assert collector.writer.backlog >= 3  # the minutes wait in memory
        # when the outage ends and the collector keeps running
        failing["on"] = False
        await run.advance(60)
        await run.stop()

    asyncio.run(scenario())
    # then the PUTs were refused, yet every minute is stored, once
    assert failing["refused"] >= 3
    bars = store.read("EURUSD-OTC")
    assert_continuous(bars)
    assert_market_bars("EURUSD-OTC", bars)
    now = int(clock.now())
    assert bars[-1][0] == now - now % 60 - 60
    assert collector.writer.backlog == 0


def test_dynamodb_throttling_delays_records_but_stops_nothing(aws_env):
    clock = ManualClock(START)
    collector, store, state = make(aws_env, clock, symbols=["EURUSD-OTC"])
    throttled = {"n": 0}

    def throttle(**kwargs):
        if throttled["n"] < 3:
            throttled["n"] += 1
            return (
                AWSResponse("http://dynamodb.test", 400, {}, None),
                {
                    "Error": {"Code": "ProvisionedThroughputExceededException", "Message": "slow down"},
                    "ResponseMetadata": {"HTTPStatusCode": 400},
                },
            )

    for ddb in (aws.resource("dynamodb").meta.client, aws.client("dynamodb")):  # records, leases
        for op in ("PutItem", "BatchWriteItem", "UpdateItem"):
            ddb.meta.events.register(f"before-call.dynamodb.{op}", throttle)
    forming = []

    async def scenario():
        run = Harness(clock, collector)
        await run.start()
        await run.advance(150)
        forming.append(state.forming_bar("EURUSD-OTC", clock.now()))
        await run.stop()

    asyncio.run(scenario())
    assert throttled["n"] == 3
    bars = store.read("EURUSD-OTC")
    assert_continuous(bars)
    now = int(clock.now())
    assert bars[-1][0] == now - now % 60 - 60
    assert forming[0] is not None and forming[0][0] == now - now % 60
    assert state.upstream_status()["source"] == "synthetic"


def test_a_second_collector_leaves_leased_symbols_alone_and_takes_over_when_the_first_dies(aws_env):
    clock = ManualClock(START)
    first, store, state = make(aws_env, clock, symbols=["EURUSD-OTC"], owner="first")
    second, _, _ = make(aws_env, clock, symbols=["EURUSD-OTC"], owner="second")

    async def scenario():
        run = Harness(clock, first)
        await run.start()
        await run.advance(10)
        await run.start(second)
        await run.advance(90)
        # then the second holds no lease and wrote nothing
        assert not second.tracked and second.writer.puts == 0
        # when the first dies without releasing its lease
        run.crash(first)
        took = await run.until(lambda: "EURUSD-OTC" in second.tracked, limit=120)
        await run.advance(120)
        await run.stop(second)
        return took

    took = asyncio.run(scenario())
    # then the second took over within the lease time (and one renewal round) and the series
    # has no hole or duplicate
    assert took <= 30 + 10 + 1
    bars = store.read("EURUSD-OTC")
    assert_continuous(bars)
    assert_market_bars("EURUSD-OTC", bars)
    assert second.writer.puts > 0


def test_retention_keeps_build_history_first_then_trims_to_retention(aws_env):
    clock = ManualClock(START)
    collector, store, state = make(aws_env, clock, retention_days=3, build_retention_days=7)
    assert collector.trim_cutoff(START + 3600) == time.strftime(
        "%Y-%m-%d", time.gmtime(START + 3600 - 7 * 86400)
    )
    later = START + 3 * 86400 + 60
    assert collector.trim_cutoff(later) == time.strftime("%Y-%m-%d", time.gmtime(later - 3 * 86400))
    store.write("EURUSD-OTC", expected("EURUSD-OTC", START - 6 * 86400 + 40, START - 6 * 86400 + 160))
    store.write("EURUSD-OTC", expected("EURUSD-OTC", START + 100, START + 220))
    from tradowix_bot.collector.tracked import TrackedSymbol

    collector.tracked["EURUSD-OTC"] = TrackedSymbol("EURUSD-OTC", START + 60)
    asyncio.run(collector._trim(later))
    assert len(store.list_days("EURUSD-OTC")) == 1


def test_forming_record_is_merged_only_when_newer_than_stored(aws_env):
    store = CandleStore(aws_env["CandlesBucket"])
    state = StateStore(aws_env["StateTable"])
    t = 1_750_000_020
    store.write("EURUSD-OTC", [(t, 1.0, 1.2, 0.9, 1.1)])
    market = MarketData(store, state, clock=lambda: t + 90)
    state.write_forming({"EURUSD-OTC": (t + 60, 1.1, 1.3, 1.0, 1.25)}, 6, now=t + 89)
    bars = market.candles(OPEN, "EURUSD-OTC")["candles"]
    assert [b["time"] for b in bars] == [t, t + 60] and bars[-1]["close"] == 1.25
    # a forming record for a minute already stored never replaces the closed bar
    state.write_forming({"EURUSD-OTC": (t, 5.0, 5.0, 5.0, 5.0)}, 6, now=t + 89)
    assert market.candles(OPEN, "EURUSD-OTC")["candles"][-1]["close"] == 1.1
    # and a record its writer stopped renewing (collector gone) is ignored
    state.write_forming({"EURUSD-OTC": (t + 60, 1.1, 1.3, 1.0, 1.25)}, 6, now=t + 80)
    assert market.candles(OPEN, "EURUSD-OTC")["count"] == 1


@pytest.fixture(autouse=True)
def _quiet_boto():
    boto3.set_stream_logger("botocore", level=40)
