"""Given the candle store on S3 (in-process moto), when bars are written and read, then there is
one gzip'd object per symbol per UTC day, a minute written again replaces the old one, ranges
are start-inclusive and end-exclusive, and a warm reader refetches only what changed."""

from __future__ import annotations

import gzip
import json

import boto3
from tradowix_bot.server.store import CandleStore, decode_day, encode_day, object_key
from unit_helpers import T0, synthetic_bars


def stored_keys(bucket: str) -> list[str]:
    resp = boto3.client("s3").list_objects_v2(Bucket=bucket)
    return sorted(o["Key"] for o in resp.get("Contents", []))


def test_bars_are_split_into_one_object_per_utc_day(aws_env):
    # given: bars from 23:58 on 2024-03-09 to 00:02 on 2024-03-10 (UTC)
    store = CandleStore(aws_env["CandlesBucket"])
    bars = synthetic_bars(T0 - 120, 4)
    # when
    written = store.write("BTCUSD-OTC", bars)
    # then: two day objects, each holding exactly its day's bars
    assert written == 2
    assert stored_keys(aws_env["CandlesBucket"]) == [
        "candles/1m/BTCUSD-OTC/2024-03-09.json.gz",
        "candles/1m/BTCUSD-OTC/2024-03-10.json.gz",
    ]
    body = boto3.client("s3").get_object(
        Bucket=aws_env["CandlesBucket"], Key=object_key("BTCUSD-OTC", "2024-03-09")
    )
    assert [b[0] for b in decode_day(body["Body"].read())] == [T0 - 120, T0 - 60]
    assert store.read("BTCUSD-OTC") == bars


def test_writing_an_existing_minute_replaces_it_never_duplicates(aws_env):
    store = CandleStore(aws_env["CandlesBucket"])
    bars = synthetic_bars(T0, 5)
    store.write("BTCUSD-OTC", bars)
    # when: the forming minute is written again with new prices, plus one new minute
    updated = (T0 + 240, 100.0, 105.0, 99.0, 104.0)
    store.write("BTCUSD-OTC", [updated, (T0 + 300, 104.0, 104.5, 103.0, 103.5)])
    # then: one bar per minute, the newest version wins, for this reader and a fresh one
    expected = bars[:4] + [updated, (T0 + 300, 104.0, 104.5, 103.0, 103.5)]
    assert store.read("BTCUSD-OTC") == expected
    assert CandleStore(aws_env["CandlesBucket"]).read("BTCUSD-OTC") == expected


def test_range_reads_are_start_inclusive_end_exclusive_across_days(aws_env):
    store = CandleStore(aws_env["CandlesBucket"])
    bars = synthetic_bars(T0 - 3 * 60, 6)
    store.write("BTCUSD-OTC", bars)
    assert store.read("BTCUSD-OTC", T0 - 120, T0 + 60) == bars[1:4]
    assert store.read("BTCUSD-OTC", start=T0) == bars[3:]
    assert store.read("BTCUSD-OTC", end=T0) == bars[:3]
    assert store.read("BTCUSD-OTC", T0 + 86400, T0 + 2 * 86400) == []


def test_unknown_symbol_reads_none(aws_env):
    store = CandleStore(aws_env["CandlesBucket"])
    store.write("BTCUSD-OTC", synthetic_bars(T0, 2))
    assert store.read("BTCUSD") is None  # a prefix of a stored symbol is not that symbol
    assert store.read("EURUSD-OTC") is None


def test_day_cache_follows_today_when_another_writer_changes_it(aws_env):
    # given: a warm reader that has today's and yesterday's objects cached
    reader = CandleStore(aws_env["CandlesBucket"])
    writer = CandleStore(aws_env["CandlesBucket"])  # e.g. the collector, another process
    writer.write("BTCUSD-OTC", synthetic_bars(T0 - 120, 4))
    assert len(reader.read("BTCUSD-OTC")) == 4
    # when: the other writer appends a bar and rewrites the forming one
    writer.write("BTCUSD-OTC", [(T0 + 60, 1.0, 9.0, 0.5, 8.0), (T0 + 120, 8.0, 8.5, 7.5, 8.25)])
    # then: the warm reader sees the new object at once, not its stale cache
    bars = reader.read("BTCUSD-OTC")
    assert [b[0] for b in bars] == [T0 - 120, T0 - 60, T0, T0 + 60, T0 + 120]
    assert bars[3] == (T0 + 60, 1.0, 9.0, 0.5, 8.0)
    # and when the day object disappears (retention), the reader forgets it too
    writer.delete_days_before("BTCUSD-OTC", "2024-03-10")
    assert [b[0] for b in reader.read("BTCUSD-OTC")] == [T0, T0 + 60, T0 + 120]


def test_warm_reader_does_not_refetch_unchanged_days(aws_env):
    store = CandleStore(aws_env["CandlesBucket"])
    store.write("BTCUSD-OTC", synthetic_bars(T0 - 86400, 2 * 1440))
    gets = []

    def record_get(params, **_):
        gets.append(params["Key"])

    s3 = store._s3
    s3.meta.events.register("before-parameter-build.s3.GetObject", record_get)
    try:
        reader = CandleStore(aws_env["CandlesBucket"])
        reader.read("BTCUSD-OTC")
        first = len(gets)
        reader.read("BTCUSD-OTC")
        assert first == 2 and len(gets) == 2  # second read: only the LIST, no GETs
    finally:
        s3.meta.events.unregister("before-parameter-build.s3.GetObject", record_get)


def test_bytes_at_rest_are_gzip_json_under_20_bytes_per_bar(aws_env):
    # given: a realistic full day of one symbol (synthetic market prices)
    from tradowix_bot.collector.synthetic_market import SyntheticMarket

    bars = SyntheticMarket().bars("BTCUSD-OTC", T0, T0 + 86400)
    store = CandleStore(aws_env["CandlesBucket"])
    store.write("BTCUSD-OTC", bars)
    obj = boto3.client("s3").get_object(
        Bucket=aws_env["CandlesBucket"], Key=object_key("BTCUSD-OTC", "2024-03-10")
    )
    data = obj["Body"].read()
    # then: the object is gzip'd JSON that any tool can read, and compact
    doc = json.loads(gzip.decompress(data))
    assert doc["symbol"] == "BTCUSD-OTC" and doc["day"] == "2024-03-10" and len(doc["bars"]) == 1440
    assert obj["ContentEncoding"] == "gzip"
    assert len(data) / len(bars) <= 20
    assert encode_day("BTCUSD-OTC", "2024-03-10", bars) == data  # deterministic (mtime=0)


class S3Calls:
    """The S3 operations a reader makes (what a request costs: LIST $5/M, GET $0.40/M)."""

    def __init__(self, store: CandleStore):
        self.calls: list[tuple[str, bool]] = []
        store._s3.meta.events.register("before-parameter-build.s3", self._record)

    def _record(self, params, model, **_):
        self.calls.append((model.name, "IfNoneMatch" in params))

    def take(self) -> list[tuple[str, bool]]:
        taken, self.calls = self.calls, []
        return taken


class Clock:
    def __init__(self, now: float):
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_an_api_reader_lists_once_a_minute_and_revalidates_today_with_a_conditional_get(aws_env):
    # given: yesterday and today stored, and an API reader at noon today (listing kept 60 s)
    clock = Clock(T0 + 12 * 3600)
    writer = CandleStore(aws_env["CandlesBucket"])
    writer.write("BTCUSD-OTC", synthetic_bars(T0 - 86400, 1440 + 720))
    reader = CandleStore(aws_env["CandlesBucket"], index_seconds=60, clock=clock)
    calls = S3Calls(reader)
    assert len(reader.read("BTCUSD-OTC")) == 2160
    assert sorted(calls.take()) == [("GetObject", False), ("GetObject", False), ("ListObjectsV2", False)]
    # when: the same question a second later, nothing changed
    clock.now += 1
    assert len(reader.read("BTCUSD-OTC")) == 2160
    # then: no LIST, one conditional GET of today's object (304), yesterday from memory
    assert calls.take() == [("GetObject", True)]
    # when: the collector closes a minute in today's object
    writer.write("BTCUSD-OTC", [(T0 + 12 * 3600, 1.0, 2.0, 0.5, 1.5)])
    clock.now += 1
    # then: the next read has it at once
    assert reader.read("BTCUSD-OTC")[-1][0] == T0 + 12 * 3600
    # and a minute later the listing is refreshed
    clock.now += 60
    reader.read("BTCUSD-OTC")
    assert ("ListObjectsV2", False) in calls.take()


def test_a_rewritten_past_day_reaches_an_api_reader_within_the_listing_period(aws_env):
    # given: an API reader that has read yesterday
    clock = Clock(T0 + 12 * 3600)
    writer = CandleStore(aws_env["CandlesBucket"])
    writer.write("BTCUSD-OTC", synthetic_bars(T0 - 86400, 1440))
    reader = CandleStore(aws_env["CandlesBucket"], index_seconds=60, clock=clock)
    assert reader.read("BTCUSD-OTC")[5][4] != 42.0
    # when: gap repair rewrites a minute of yesterday
    writer.write("BTCUSD-OTC", [(T0 - 86400 + 300, 41.0, 43.0, 40.0, 42.0)])
    # then: the reader serves it once its listing is older than the period
    clock.now += 60
    assert reader.read("BTCUSD-OTC")[5] == (T0 - 86400 + 300, 41.0, 43.0, 40.0, 42.0)


def test_just_after_midnight_yesterday_is_revalidated_too(aws_env):
    # given: a reader that cached yesterday at 23:59:30, before its last minute was written
    clock = Clock(T0 - 30)
    writer = CandleStore(aws_env["CandlesBucket"])
    writer.write("BTCUSD-OTC", synthetic_bars(T0 - 600, 9))
    reader = CandleStore(aws_env["CandlesBucket"], index_seconds=60, clock=clock)
    assert reader.read("BTCUSD-OTC")[-1][0] == T0 - 120
    # when: the collector writes 23:59 at 00:00:00.5, and a partner asks at 00:00:05
    writer.write("BTCUSD-OTC", [(T0 - 60, 1.0, 2.0, 0.5, 1.5)])
    clock.now = T0 + 5
    # then: the bar is served, not hidden behind the listing kept from 23:59:30
    assert reader.read("BTCUSD-OTC")[-1][0] == T0 - 60
