"""Given replay files (the original's JSON candle files and CSV), when one of them is bad (a
repeated `time`, in either format), then the error names the file and line, nothing of that
file is written, the symbol is marked failed in the status partners read, and the collector
retries a few times with growing pauses instead of every 0.1 s; when a file holds bars the
store does not take, the status says how many and why."""

from __future__ import annotations

import asyncio
import json
import logging

import boto3
import pytest
from collector_harness import START, Harness
from tradowix_bot.collector import Collector, ManualClock
from tradowix_bot.collector.replay import ReplaySource
from tradowix_bot.errors import MalformedCandles
from tradowix_bot.server.authn import OPEN
from tradowix_bot.server.market import MarketData
from tradowix_bot.server.state import StateStore
from tradowix_bot.server.store import CandleStore

T0 = START - START % 60 - 600  # ten minutes before the collector starts


def bar(t: int, price: float = 1.1) -> dict:
    return {"time": t, "open": price, "high": price + 0.1, "low": price - 0.1, "close": price}


def run_replay(aws_env, directory, minutes: float, **kw):
    clock = ManualClock(START)
    store = CandleStore(aws_env["CandlesBucket"])
    state = StateStore(aws_env["StateTable"])
    collector = Collector(
        ReplaySource(directory, clock), store, state, clock=clock, backfill_days=1 / 24, **kw
    )
    market = MarketData(store, state, clock=clock.now)

    async def scenario():
        run = Harness(clock, collector)
        await run.start()
        await run.advance(minutes * 60, step=20)
        status = (market.live_status(OPEN), collector.status_record())
        await run.stop()
        return status

    partner, owner = asyncio.run(scenario())
    return store, partner, owner


def repair_lines(caplog, symbol: str) -> list[logging.LogRecord]:
    return [
        r
        for r in caplog.records
        if "history repair" in r.getMessage() and getattr(r, "symbol", None) == symbol
    ]


@pytest.mark.parametrize(
    "name, content, line",
    [
        (
            "BAD-OTC.json",
            "[\n"
            + json.dumps(bar(T0))
            + ",\n"
            + json.dumps(bar(T0 + 60))
            + ",\n"
            + json.dumps(bar(T0, 9.9))
            + "\n]\n",
            4,
        ),
        (
            "BAD-OTC.csv",
            f"time,open,high,low,close\n{T0},1.1,1.2,1.0,1.1\n{T0 + 60},1.1,1.2,1.0,1.1\n{T0},9.9,10,9.8,9.9\n",
            4,
        ),
    ],
)
def test_a_repeated_time_fails_the_symbol_clearly_and_is_retried_a_few_times_only(
    aws_env, tmp_path, caplog, name, content, line
):
    # given a good replay file and a bad one (a repeated time on `line`)
    (tmp_path / "GOOD-OTC.json").write_text(json.dumps([bar(T0), bar(T0 + 60)]))
    (tmp_path / name).write_text(content)
    caplog.set_level(logging.INFO)
    # when the collector replays them for 30 minutes
    store, partner, owner = run_replay(aws_env, tmp_path, 30)
    # then the good file is stored, and nothing of the bad one
    assert [b[0] for b in store.read("GOOD-OTC")] == [T0, T0 + 60]
    assert store.read("BAD-OTC") is None
    # and partners see the symbol failed, with a code
    assert partner["upstream"]["symbols"]["BAD-OTC"]["state"] == "failed"
    assert partner["upstream"]["symbols"]["BAD-OTC"]["error"] == "replay_input_invalid"
    assert partner["upstream"]["symbols"]["GOOD-OTC"]["error"] is None
    # and the owner's status names the file and the line
    detail = owner["symbols"]["BAD-OTC"]["detail"]
    assert f"{name}:{line}: duplicate time {T0} (first at line 2)" in detail
    # and it was tried 5 times, further and further apart, then given up (no log flood)
    lines = repair_lines(caplog, "BAD-OTC")
    assert len(lines) == 5 and lines[-1].getMessage() == "history repair failed; giving up until restart"
    assert all(r.exc_info is None for r in lines)  # one line each, no traceback


def test_a_csv_with_a_repeated_time_is_refused_not_last_wins(tmp_path):
    (tmp_path / "X-OTC.csv").write_text(f"time,open,high,low,close\n{T0},1,1,1,1\n{T0},2,2,2,2\n")
    source = ReplaySource(tmp_path, ManualClock(START))
    with pytest.raises(MalformedCandles, match=r"X-OTC.csv:3: duplicate time"):
        asyncio.run(source.history("X-OTC", 10**10, 100))


def test_replay_says_how_many_bars_it_skipped_and_why(aws_env, tmp_path, caplog):
    # given a replay file with 3 bars older than the backfill window (1 hour), 2 not newer than
    # what is stored already, 2 new ones and 1 of the minute still running
    old = [bar(T0 - 7200 + 60 * i) for i in range(3)]
    stored = [bar(T0 - 120), bar(T0 - 60)]
    new = [bar(T0), bar(T0 + 60)]
    running = [bar(START - START % 60)]
    (tmp_path / "EURUSD-OTC.json").write_text(json.dumps(old + stored + new + running))
    CandleStore(aws_env["CandlesBucket"]).write(
        "EURUSD-OTC", [(b["time"], 1.0, 1.0, 1.0, 1.0) for b in stored]
    )
    caplog.set_level(logging.INFO)
    # when the collector replays it
    store, partner, owner = run_replay(aws_env, tmp_path, 1)
    # then the new bars are stored, the stored ones untouched
    bars = store.read("EURUSD-OTC")
    assert [b[0] for b in bars] == [T0 - 120, T0 - 60, T0, T0 + 60]
    assert bars[0][1:] == (1.0, 1.0, 1.0, 1.0)
    # and the owner's status and the log say what was skipped, and why
    skipped = {"before_backfill_window": 3, "not_newer_than_stored": 2, "not_closed_yet": 1}
    assert owner["symbols"]["EURUSD-OTC"]["skipped"] == skipped
    assert any(getattr(r, "skipped", None) == skipped for r in caplog.records)


@pytest.fixture(autouse=True)
def _quiet_boto():
    boto3.set_stream_logger("botocore", level=40)
