"""Given the collector on the synthetic source (time-compressed) against the emulated store,
when minutes pass, then every closed minute lands in S3 once, the forming bar is readable,
nothing is lost through S3 outages or DynamoDB throttling, and leases keep one writer."""

from __future__ import annotations

import asyncio
import time

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from botocore.exceptions import EndpointConnectionError
from tradowix_bot import aws
from tradowix_bot.collector import Clock, Collector
from tradowix_bot.collector.synthetic import SyntheticSource
from tradowix_bot.market import MarketData
from tradowix_bot.state import StateStore
from tradowix_bot.store import CandleStore
from tradowix_bot.synthetic import SyntheticMarket

SPEED = 30.0  # a minute every 2 s
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
    kw.setdefault("lease_seconds", 3.0)
    kw.setdefault("forming_interval", 0.2)
    kw.setdefault("status_interval", 0.5)
    return Collector(SyntheticSource(clock), store, state, clock=clock, **kw), store, state


async def run_for(collector, seconds: float, during=None):
    stop = asyncio.Event()
    task = asyncio.create_task(collector.run(stop))
    if during:
        await during()
    await asyncio.sleep(seconds)
    stop.set()
    await asyncio.wait_for(task, 20)


def expected(symbol, start, end):
    return [tuple(b) for b in SyntheticMarket().bars(symbol, start, end)]


def assert_continuous(bars):
    times = [b[0] for b in bars]
    assert times == sorted(set(times)), "duplicate or unordered minutes"
    assert all(b - a == 60 for a, b in zip(times, times[1:], strict=False)), "a minute is missing"


def test_closed_minutes_match_the_ticks_and_forming_bar_is_served(aws_env):
    # given a collector streaming two symbols at 30x
    clock = Clock(SPEED)
    sink = RecordingSink()
    collector, store, state = make(aws_env, clock, sinks=[sink])
    market = MarketData(store, state, clock=clock.now)
    seen_forming = []

    async def probe():
        await asyncio.sleep(5)
        seen_forming.append(market.candles(None, "BTCUSD-OTC", limit=2))

    # when ~4 simulated minutes pass
    asyncio.run(run_for(collector, 4, during=probe))
    # then the stored series is the synthetic market's, continuous, back to the backfill floor
    now = clock.now()
    for symbol in SYMBOLS:
        bars = store.read(symbol)
        assert_continuous(bars)
        assert bars == expected(symbol, bars[0][0], bars[-1][0] + 60)
        assert bars[-1][0] >= now - 3 * 60 and bars[0][0] <= now - 25 * 60
    # and the REST answer carried a forming bar newer than the last stored minute
    answer = seen_forming[0]
    assert answer["last_closed"] is False
    # and the sink saw forming updates and closes
    assert any(c[2] for c in sink.calls) and any(not c[2] for c in sink.calls)
    assert {c[0] for c in sink.calls} == set(SYMBOLS)
    # and the upstream status is visible as /api/live/status reads it
    status = MarketData(store, state).live_status(None, None)["upstream"]
    assert status["source"] == "synthetic" and set(status["symbols"]) == set(SYMBOLS)


def test_s3_unavailable_for_a_while_buffers_bars_and_writes_them_all_later(aws_env):
    # given a collector whose S3 PUTs fail for ~3 simulated minutes
    clock = Clock(SPEED)
    collector, store, state = make(aws_env, clock, symbols=["EURUSD-OTC"])
    failing = {"on": False, "refused": 0}

    def refuse(**kwargs):
        if failing["on"]:
            failing["refused"] += 1
            raise EndpointConnectionError(endpoint_url="http://s3.test")

    aws.client("s3").meta.events.register("before-call.s3.PutObject", refuse)

    async def outage():
        await asyncio.sleep(2.5)  # backfill done
        failing["on"] = True
        await asyncio.sleep(6)
        failing["on"] = False

    # when the outage ends and the collector keeps running
    asyncio.run(run_for(collector, 5, during=outage))
    # then the PUTs were refused, yet every minute is stored, once
    assert failing["refused"] >= 2
    bars = store.read("EURUSD-OTC")
    assert_continuous(bars)
    assert bars == expected("EURUSD-OTC", bars[0][0], bars[-1][0] + 60)
    assert bars[-1][0] >= clock.now() - 3 * 60
    assert collector.writer.backlog == 0


def test_dynamodb_throttling_delays_records_but_stops_nothing(aws_env):
    clock = Clock(SPEED)
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

    ddb = aws.resource("dynamodb").meta.client
    for op in ("PutItem", "BatchWriteItem"):
        ddb.meta.events.register(f"before-call.dynamodb.{op}", throttle)
    asyncio.run(run_for(collector, 5))
    assert throttled["n"] == 3
    bars = store.read("EURUSD-OTC")
    assert_continuous(bars)
    assert bars[-1][0] >= clock.now() - 3 * 60
    assert state.forming_bar("EURUSD-OTC") is not None
    assert state.upstream_status()["source"] == "synthetic"


def test_a_second_collector_leaves_leased_symbols_alone_and_takes_over_when_the_first_dies(aws_env):
    clock = Clock(SPEED)
    first, store, state = make(aws_env, clock, symbols=["EURUSD-OTC"], owner="first")
    second, _, _ = make(aws_env, clock, symbols=["EURUSD-OTC"], owner="second")

    async def scenario():
        stop1, stop2 = asyncio.Event(), asyncio.Event()
        t1 = asyncio.create_task(first.run(stop1))
        await asyncio.sleep(1.5)
        t2 = asyncio.create_task(second.run(stop2))
        await asyncio.sleep(3)
        # then the second holds no lease and wrote nothing
        assert not second.leases and second.writer.puts == 0
        # when the first dies without releasing its lease (its tasks simply stop)
        first.state.release_lease = lambda *a: None
        t1.cancel()
        died = time.monotonic()
        while not second.leases:
            await asyncio.sleep(0.1)
        took = time.monotonic() - died
        await asyncio.sleep(3)
        stop2.set()
        await asyncio.wait_for(t2, 20)
        return took

    took = asyncio.run(scenario())
    # then the second took over within the lease time and the series has no hole or duplicate
    assert took <= 3.0 + 1.5
    bars = store.read("EURUSD-OTC")
    assert_continuous(bars)
    assert bars == expected("EURUSD-OTC", bars[0][0], bars[-1][0] + 60)
    assert second.writer.puts > 0


def test_retention_keeps_build_history_first_then_trims_to_retention(aws_env):
    clock = Clock()
    collector, store, state = make(aws_env, clock, retention_days=3, build_retention_days=7)
    start = collector._started_at
    assert collector.trim_cutoff(start + 3600) == time.strftime(
        "%Y-%m-%d", time.gmtime(start + 3600 - 7 * 86400)
    )
    later = start + 3 * 86400 + 60
    assert collector.trim_cutoff(later) == time.strftime("%Y-%m-%d", time.gmtime(later - 3 * 86400))
    store.write("EURUSD-OTC", expected("EURUSD-OTC", int(start) - 6 * 86400, int(start) - 6 * 86400 + 120))
    # bars younger than the retention at `later` (on the cutoff's day or after it whatever the
    # time of day; bars from before `start` fall on the previous day just after midnight)
    store.write("EURUSD-OTC", expected("EURUSD-OTC", int(start) + 120, int(start) + 240))
    collector.leases["EURUSD-OTC"] = time.time() + 60
    asyncio.run(collector._trim(later))
    assert len(store.list_days("EURUSD-OTC")) == 1


def test_forming_record_is_merged_only_when_newer_than_stored(aws_env):
    store = CandleStore(aws_env["CandlesBucket"])
    state = StateStore(aws_env["StateTable"])
    t = 1_750_000_020
    store.write("EURUSD-OTC", [(t, 1.0, 1.2, 0.9, 1.1)])
    market = MarketData(store, state, clock=lambda: t + 90)
    state.write_forming({"EURUSD-OTC": (t + 60, 1.1, 1.3, 1.0, 1.25)}, 180, now=t + 90)
    bars = market.candles(None, "EURUSD-OTC")["candles"]
    assert [b["time"] for b in bars] == [t, t + 60] and bars[-1]["close"] == 1.25
    # a forming record for a minute already stored never replaces the closed bar
    state.write_forming({"EURUSD-OTC": (t, 5.0, 5.0, 5.0, 5.0)}, 180, now=t + 90)
    assert market.candles(None, "EURUSD-OTC")["candles"][-1]["close"] == 1.1
    # and an expired record (collector gone) is ignored
    state.write_forming({"EURUSD-OTC": (t + 60, 1.1, 1.3, 1.0, 1.25)}, 10, now=t)
    assert market.candles(None, "EURUSD-OTC")["count"] == 1


@pytest.fixture(autouse=True)
def _quiet_boto():
    boto3.set_stream_logger("botocore", level=40)
