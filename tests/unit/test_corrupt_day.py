"""Given a stored day object that was cut short (a truncated .json.gz), when partners read the
symbol and the collector runs, then the other days still answer (REST and the WebSocket's
history), the collector reports the damaged day in its status and rebuilds it from the
upstream's history (or, where history does not reach, from the whole bars still readable),
without retrying a failing repair in a loop."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from types import SimpleNamespace

import boto3
import pytest
from collector_harness import MARKET, START, Harness, assert_continuous, assert_market_bars, partner_get
from tradowix_bot.collector import Collector, ManualClock
from tradowix_bot.collector.replay import ReplaySource
from tradowix_bot.collector.sources import SourceError
from tradowix_bot.collector.synthetic import SyntheticSource
from tradowix_bot.server import aws
from tradowix_bot.server.authn import OPEN
from tradowix_bot.server.market import MarketData
from tradowix_bot.server.state import StateStore
from tradowix_bot.server.store import DAY, CandleStore, day_of, day_start, object_key
from unit_helpers import T0

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "functions" / "ws"))
SYMBOL = "EURUSD-OTC"


def truncate(bucket: str, symbol: str, day: str, keep: float = 0.5) -> None:
    s3 = aws.client("s3")
    key = object_key(symbol, day)
    data = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    s3.put_object(Bucket=bucket, Key=key, Body=data[: int(len(data) * keep)])


def test_partners_get_the_other_days_when_one_day_object_is_truncated(api):
    # given two stored days of BTCUSD-OTC, the first one's object cut in half
    truncate(api["CandlesBucket"], "BTCUSD-OTC", day_of(T0))
    # when a partner asks for the candles
    answer = partner_get("/api/candles", {"symbol": "BTCUSD-OTC"})
    # then the answer is 200 with the second day, whole, and nothing of the damaged one
    assert answer.status == 200, answer.body
    times = [c["time"] for c in answer.json()["candles"]]
    assert times[0] == T0 + DAY and len(times) == 1440
    # and 5-minute bars too
    assert partner_get("/api/candles", {"symbol": "BTCUSD-OTC", "timeframe": "300"}).status == 200


def test_a_websocket_subscribe_gets_its_history_when_a_day_object_is_truncated(aws_env, monkeypatch):
    from tradowix_local.template import Template

    for k, v in Template().functions()["WsFunction"].environment.items():
        monkeypatch.setenv(k, v)
    from live_ws import context, handler  # its settings are validated at import, as at Lambda's init

    sent = []
    poster = SimpleNamespace(post=lambda cid, msg: sent.append(msg) or "ok", delete=lambda cid: "ok")
    monkeypatch.setattr("tradowix_bot.server.live_poster.ConnectionPoster", lambda endpoint: poster)
    context.reset()
    # given two stored days, the older one's object truncated
    import time

    now = int(time.time()) - int(time.time()) % 60
    bars = [(now - 60 * (2000 - i), 100.0 + i, 101.0 + i, 99.0 + i, 100.5 + i) for i in range(2000)]
    CandleStore(aws_env["CandlesBucket"]).write("BTCUSD-OTC", bars)
    truncate(aws_env["CandlesBucket"], "BTCUSD-OTC", day_of(bars[0][0]))
    events = Path(__file__).parent / "events"
    # when a partner connects and subscribes
    assert handler.handler(json.loads((events / "ws_connect.json").read_text()), None)["statusCode"] == 200
    handler.handler(json.loads((events / "ws_message.json").read_text()), None)
    context.reset()
    # then the history comes, from the days that can be read
    assert [m["type"] for m in sent] == ["status", "history", "timing"]
    assert sent[1]["candles"]


def make(aws_env, clock, source, **kw):
    store = CandleStore(aws_env["CandlesBucket"])
    state = StateStore(aws_env["StateTable"])
    collector = Collector(source, store, state, clock=clock, symbols=[SYMBOL], **kw)
    return collector, store, MarketData(store, state, clock=clock.now)


def test_the_collector_reports_and_rebuilds_a_truncated_day_from_history(aws_env):
    # given 14 hours of stored history, yesterday's object (its last 2 hours) truncated
    clock = ManualClock(START)
    minute = START - START % 60
    store = CandleStore(aws_env["CandlesBucket"])
    store.write(SYMBOL, [tuple(b) for b in MARKET.bars(SYMBOL, minute - 14 * 3600, minute)])
    yesterday = day_of(minute - DAY)
    truncate(aws_env["CandlesBucket"], SYMBOL, yesterday)
    source = SyntheticSource(clock)
    collector, store, market = make(aws_env, clock, source, backfill_days=14 / 24)
    history, refusals = source.history, []

    async def history_away_at_first(*args):  # the upstream's history does not answer for a while
        if len(refusals) < 2:
            refusals.append(args)
            raise SourceError("no answer to requestOlderTicks within 15s")
        return await history(*args)

    source.history = history_away_at_first
    seen = {}

    async def scenario():
        run = Harness(clock, collector)
        # when the collector starts, finds the damaged day, and cannot rebuild it at once
        await run.start()
        await run.advance(5, step=1)
        seen["partner"] = market.live_status(OPEN)["upstream"]["symbols"][SYMBOL]
        seen["owner"] = collector.status_record()["symbols"][SYMBOL]
        await run.advance(30, step=1)
        seen["owner after"] = collector.status_record()["symbols"][SYMBOL]
        seen["repairs"] = collector.repairs
        await run.stop()

    asyncio.run(scenario())
    # then the damaged day was reported, to partners as a code
    assert seen["partner"]["state"] == "degraded" and seen["partner"]["error"] == "stored_day_corrupt"
    assert seen["owner"]["corrupt_days"] == [yesterday]
    # and it was rebuilt once history answered, without a retry loop
    assert seen["owner after"]["rebuilt_days"] == [yesterday] and "corrupt_days" not in seen["owner after"]
    assert seen["owner after"]["state"] == "live"
    assert len(refusals) == 2 and seen["repairs"] <= 2
    # and the rebuilt day is the upstream's history for that day, readable again
    first = minute - 14 * 3600
    stored = store.read(SYMBOL, first, day_start(day_of(minute)))
    assert [tuple(b[:5]) for b in stored] == [
        tuple(b) for b in MARKET.bars(SYMBOL, first, day_start(day_of(minute)))
    ]
    # and every stored minute since is there
    assert_continuous(store.read(SYMBOL, first))


def test_a_day_damaged_while_the_collector_runs_is_rebuilt_when_it_next_writes(aws_env):
    # given a collector streaming, its history repaired
    clock = ManualClock(START)
    collector, store, market = make(aws_env, clock, SyntheticSource(clock), backfill_days=30 / 1440)

    async def scenario():
        run = Harness(clock, collector)
        await run.start()
        await run.advance(60)
        # when today's object is cut short behind its back (and its cached copy is gone)
        today = day_of(int(clock.now()))
        store.forget(SYMBOL)
        truncate(aws_env["CandlesBucket"], SYMBOL, today)
        await run.advance(120, step=2)
        status = collector.status_record()["symbols"][SYMBOL]
        await run.stop()
        return today, status

    today, status = asyncio.run(scenario())
    # then the next write found it, it was rebuilt, and the minutes since are all there
    assert status["rebuilt_days"] == [today] and status["state"] == "live"
    bars = store.read(SYMBOL)
    assert_continuous(bars)
    assert_market_bars(SYMBOL, bars)
    now = int(clock.now())
    assert bars[-1][0] == now - now % 60 - 60


def test_where_history_does_not_reach_the_whole_bars_still_readable_are_kept(aws_env, tmp_path):
    # given one stored day whose object is cut at 60 %, and a source without that day's history
    clock = ManualClock(START)
    minute = START - START % 60
    first = day_start(day_of(minute - DAY))
    original = [tuple(b) for b in MARKET.bars(SYMBOL, first, first + 600 * 60)]
    CandleStore(aws_env["CandlesBucket"]).write(SYMBOL, original)
    truncate(aws_env["CandlesBucket"], SYMBOL, day_of(first), keep=0.6)
    collector, store, market = make(aws_env, clock, ReplaySource(tmp_path, clock), backfill_days=2)

    async def scenario():
        run = Harness(clock, collector)
        await run.start()
        await run.advance(10, step=5)
        await run.stop()

    asyncio.run(scenario())
    # then the day object is readable again and holds a run of the original bars, none altered
    kept = store.read(SYMBOL)
    assert kept and len(kept) < len(original)
    assert kept == original[: len(kept)]
    assert collector.status_record()["symbols"][SYMBOL]["rebuilt_days"] == [day_of(first)]


@pytest.fixture(autouse=True)
def _quiet_boto():
    boto3.set_stream_logger("botocore", level=40)
