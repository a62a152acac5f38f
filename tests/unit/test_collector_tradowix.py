"""Given a stand-in upstream that speaks the Tradowix protocol on 127.0.0.1, when the tradowix
adapter collects from it, then bars are right and every bad frame or fault is survived."""

from __future__ import annotations

import asyncio
import json

import pytest
from collector_harness import assert_market_bars, expected
from tradowix_bot.collector import Collector
from tradowix_bot.collector.archive import FilesTarget, StoreTarget, archive
from tradowix_bot.collector.sources import SourceError
from tradowix_bot.collector.tradowix import TradowixSource
from tradowix_bot.state import StateStore
from tradowix_bot.store import CandleStore
from tradowix_bot.synthetic import SyntheticMarket


def collector_for(aws_env, upstream, token="good-token", auth_timeout=5.0, **kw):
    clock = upstream.clock
    source = TradowixSource(
        upstream.url, token, clock, ping_interval=1.0, auth_timeout=auth_timeout, auth_backoff=60
    )
    store = CandleStore(aws_env["CandlesBucket"])
    state = StateStore(aws_env["StateTable"])
    kw.setdefault("backfill_days", 30 / 1440)
    collector = Collector(
        source, store, state, clock=clock, lease_seconds=3, forming_interval=0.2, status_interval=0.3, **kw
    )
    return collector, store, state


async def run_for(collector, seconds, during=None):
    stop = asyncio.Event()
    task = asyncio.create_task(collector.run(stop))
    if during:
        await during()
    await asyncio.sleep(seconds)
    stop.set()
    await asyncio.wait_for(task, 20)


async def wait_until(condition, timeout: float, step: float = 0.05) -> bool:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            return False
        await asyncio.sleep(step)
    return True


def assert_continuous(bars):
    times = [b[0] for b in bars]
    assert times == sorted(set(times))
    assert all(b - a == 60 for a, b in zip(times, times[1:], strict=False))


BAD_FRAMES = [
    "this is not json",
    "[1, 2, 3]",
    json.dumps({"type": "somethingNew", "data": {}}),
    json.dumps({"type": "tickUpdate", "data": {"symbol": "EURUSD-OTC", "tick": ["1.1", 1]}}),
    json.dumps({"type": "tickUpdate", "data": {"symbol": "EURUSD-OTC", "tick": [-1.0, 1]}}),
    json.dumps({"type": "quote", "data": {"symbol": "EURUSD-OTC", "price": 1.1, "timestamp": 1000}}),  # 1970
    json.dumps(
        {"type": "quote", "data": {"symbol": "EURUSD-OTC", "price": 1.1, "timestamp": 9e15}}
    ),  # future
    json.dumps({"type": "tickUpdate", "data": {"symbol": 5, "tick": [1.1, 1]}}),
]


def test_collects_from_the_upstream_and_survives_garbage_frames(aws_env, upstream):
    # given an upstream that also sends frames that are not JSON, unknown types and bad ticks
    upstream.extra_frames = BAD_FRAMES
    collector, store, state = collector_for(aws_env, upstream, symbols=None)
    clock = upstream.clock
    checked = ("EURUSD-OTC", "BTCUSD-OTC")
    after_backfill = []

    async def backfilled_then_a_minute_from_the_ticks():
        # Waits for what it needs rather than a fixed time: on a loaded machine the 30x clock
        # runs on while the process waits for CPU.
        assert await wait_until(
            lambda: len(set(upstream.subscriptions)) == len(SyntheticMarket().symbols), 20
        )
        assert await wait_until(collector.backfilled.is_set, 30)
        now = clock.now()
        after_backfill.append(int(now) - int(now) % 60 + 60)  # its bars are built from the ticks
        stored = lambda: all(any(b[0] >= after_backfill[0] for b in store.read(s) or []) for s in checked)  # noqa: E731
        assert await wait_until(stored, 30, step=0.25)

    # when the collector links every symbol (from `instruments`), backfills them and runs on
    # until the first minute that began after the backfill is stored
    asyncio.run(run_for(collector, 0, during=backfilled_then_a_minute_from_the_ticks))
    # then the session cookie and handshake were used, and every symbol is covered by its own link
    assert "session-token=good-token" in upstream.cookies[0]
    assert set(upstream.subscriptions) == set(SyntheticMarket().symbols)
    assert upstream.pings > 0
    # and the catalog learned from `instruments` keeps the categories
    assert {i.category for i in store.read_catalog()} >= {"crypto", "currencies", "stocks"}
    # and the bars equal the upstream's own prices, continuous, history merged with ticks
    for symbol in checked:
        bars = store.read(symbol)
        assert_continuous(bars)
        assert_market_bars(symbol, bars)
        assert bars[-1][0] >= after_backfill[0]
    # and the garbage was counted, not fatal
    rejected = collector.status_record()["rejected"]
    assert rejected["not_json"] >= 1 and rejected["unknown_type"] >= 1 and rejected["bad_tick"] >= 4
    assert rejected["not_a_message"] >= 1 and rejected["bad_tick_message"] >= 1


def test_history_pages_overlapping_stored_bars_change_nothing_stored(aws_env, upstream):
    # given stored bars (deliberately different from the upstream's) and pages that overlap them
    upstream.history_overlap = 5
    clock = upstream.clock
    now = int(clock.now())
    mine = [(t, 9.0, 9.0, 9.0, 9.0) for t in range(now - now % 60 - 900, now - now % 60 - 600, 60)]
    collector, store, state = collector_for(aws_env, upstream, symbols=["EURUSD-OTC"])
    store.write("EURUSD-OTC", mine)
    asyncio.run(run_for(collector, 3))
    bars = store.read("EURUSD-OTC")
    assert_continuous(bars)
    assert bars[: len(mine)] == mine  # stored minutes untouched
    after = bars[len(mine) :]
    assert_market_bars("EURUSD-OTC", after)


def test_a_refused_token_is_reported_and_retried_only_after_minutes(aws_env, upstream):
    collector, store, state = collector_for(aws_env, upstream, token="expired-token", symbols=["EURUSD-OTC"])
    asyncio.run(run_for(collector, 3))
    status = state.upstream_status()
    assert status["authenticated"] is False and status["error"] == "upstream_auth_failed"
    assert "refused" in status["last_error"]  # the owner's detail
    assert "expired-token" not in json.dumps(status)
    assert upstream.auth_attempts == 1  # no hot loop: the next try is auth_backoff (60 s) away


def test_a_token_the_owner_replaces_is_used_within_seconds_without_a_restart(aws_env, upstream):
    # given a collector whose token the upstream refuses, and a store the owner can put a new
    # token in (the admin panel writes SSM; here a plain holder read the same way)
    stored = {"token": "expired-token"}
    collector, store, state = collector_for(aws_env, upstream, token="expired-token", symbols=["EURUSD-OTC"])
    collector.source.reload_token = lambda: stored["token"]
    collector.source.token_recheck_seconds = 0.5

    async def replace_token():
        assert await wait_until(
            lambda: (state.upstream_status() or {}).get("error") == "upstream_auth_failed", 5
        )
        assert state.upstream_status()["authenticated"] is False  # refused, backing off (60 s)
        stored["token"] = "good-token"  # when the owner stores a fresh token
        # then, long before the 60 s back-off was over, it authenticated and collected
        assert await wait_until(lambda: state.upstream_status()["authenticated"], 10)
        assert await wait_until(lambda: store.read("EURUSD-OTC"), 10), "no bars after the new token"

    asyncio.run(run_for(collector, 0, during=replace_token))
    status = state.upstream_status()
    assert "good-token" not in json.dumps(status) and "expired-token" not in json.dumps(status)


def test_an_upstream_that_never_confirms_the_session_is_reported(aws_env, upstream):
    upstream.never_authenticate = True
    collector, store, state = collector_for(aws_env, upstream, auth_timeout=1.0, symbols=["EURUSD-OTC"])
    asyncio.run(run_for(collector, 2.5))
    status = state.upstream_status()
    assert status["authenticated"] is False and status["error"] == "upstream_auth_failed"
    assert "did not confirm" in status["last_error"]
    assert upstream.connections == 1


def test_a_dropped_link_reconnects_and_the_gap_is_repaired(aws_env, upstream):
    collector, store, state = collector_for(aws_env, upstream, symbols=["EURUSD-OTC"])

    async def drop():
        await asyncio.sleep(3)
        upstream.drop_links()
        await asyncio.sleep(0.3)
        upstream.drop_links()

    asyncio.run(run_for(collector, 5, during=drop))
    assert upstream.connections >= 4  # control + stream, then both again
    bars = store.read("EURUSD-OTC")
    assert_continuous(bars)
    assert_market_bars("EURUSD-OTC", bars)
    assert bars[-1][0] >= upstream.clock.now() - 3 * 60


def test_archive_backfills_all_symbols_resumably_and_a_second_run_changes_nothing(
    aws_env, upstream, tmp_path
):
    clock = upstream.clock
    source = TradowixSource(upstream.url, "good-token", clock)
    store = CandleStore(aws_env["CandlesBucket"])
    now = int(clock.now())
    end = now - now % 60
    start = end - 15 * 3600  # 900 minutes: three pages per symbol

    async def go(target):
        await source.start()
        try:
            infos = await source.instruments()
            return await archive(source, target, [i.symbol for i in infos], start, end)
        finally:
            await source.close()

    first = asyncio.run(go(StoreTarget(store)))
    assert all(r.error is None and r.written == 900 for r in first)
    assert store.read("AAPL-OTC", start, end) == expected("AAPL-OTC", start, end)
    requests = upstream.history_requests
    second = asyncio.run(go(StoreTarget(store)))
    assert all(r.written == 0 for r in second)
    assert upstream.history_requests - requests <= 2 * len(second)  # only the edges were asked
    files = asyncio.run(go(FilesTarget(tmp_path)))
    assert all(r.written == 900 for r in files)
    assert (tmp_path / "EURUSD-OTC.json").read_text().startswith("[\n{")


def test_a_stream_that_starts_a_minute_late_after_a_garbage_tick_keeps_that_minute_right(aws_env, upstream):
    # given an upstream that gets round to a subscription only 10 s into the next minute and
    # first sends a tick of that symbol with a garbage timestamp (1 ms after 1970)
    upstream.late_start = 10
    upstream.extra_frames = [
        json.dumps({"type": "quote", "data": {"symbol": "EURUSD-OTC", "price": 1.1, "timestamp": 1}})
    ]
    collector, store, state = collector_for(aws_env, upstream, symbols=["EURUSD-OTC"])
    clock = upstream.clock

    async def until_the_first_streamed_minute_is_stored():
        assert await wait_until(lambda: upstream.subscriptions, 10)
        now = clock.now()
        first_streamed = int(now) - int(now) % 60 + 60  # its first 10 s were never streamed
        stored = lambda: any(b[0] >= first_streamed for b in store.read("EURUSD-OTC") or [])  # noqa: E731
        assert await wait_until(stored, 15)

    # when the collector runs until that minute is stored
    asyncio.run(run_for(collector, 0.5, during=until_the_first_streamed_minute_is_stored))
    # then that minute is the upstream's own bar (open included), and so is every other minute
    assert collector.status_record()["rejected"]["bad_tick"] == 1
    bars = store.read("EURUSD-OTC")
    assert_continuous(bars)
    assert_market_bars("EURUSD-OTC", bars)


async def lag_until_a_minute_closes(collector, store, upstream) -> int:
    """Once EURUSD-OTC's history is repaired, the upstream holds its ticks back from 20-30 s into
    a minute on (the link stays up) until the collector has closed that minute on time, without
    the held-back ticks. Returns that minute."""
    clock = upstream.clock
    t = collector.tracked
    assert await wait_until(lambda: store.read("EURUSD-OTC") and t["EURUSD-OTC"].repair is None, 10)
    assert await wait_until(lambda: 20 <= clock.now() % 60 <= 30, 5)
    upstream.paused = True
    now = clock.now()
    minute = int(now) - int(now) % 60
    assert await wait_until(lambda: collector.tracked["EURUSD-OTC"].bars.closed_through > minute, 5)
    return minute


def test_a_minute_closed_while_the_upstream_lagged_is_repaired_when_the_link_then_dies(aws_env, upstream):
    # given a collector streaming EURUSD-OTC, its history repaired
    collector, store, state = collector_for(aws_env, upstream, symbols=["EURUSD-OTC"])
    lagging_minute = []

    async def lag_then_die():
        # when the upstream lags until the collector closed a minute without its last ticks
        lagging_minute.append(await lag_until_a_minute_closes(collector, store, upstream))
        # and then the link dies, taking the held-back ticks with it; it is linked again and repaired
        repairs = collector.repairs
        upstream.drop_links()
        upstream.paused = False
        assert await wait_until(lambda: collector.repairs > repairs, 5)

    asyncio.run(run_for(collector, 0.3, during=lag_then_die))
    # then the minute that closed while the upstream lagged is the upstream's own bar
    bars = store.read("EURUSD-OTC")
    assert lagging_minute[0] in [b[0] for b in bars]
    assert_continuous(bars)
    assert_market_bars("EURUSD-OTC", bars)


def test_a_history_request_on_a_link_that_dies_fails_at_once(upstream):
    # given an upstream that leaves history requests unanswered, and a long request timeout
    upstream.answer_history = False
    source = TradowixSource(upstream.url, "good-token", upstream.clock, request_timeout=30)

    async def ask_then_drop():
        await source.start()
        try:
            request = asyncio.create_task(source.history("EURUSD-OTC", int(upstream.clock.now()), 10))
            await asyncio.sleep(0.3)
            # when the link carrying the request dies
            upstream.drop_links()
            started = asyncio.get_running_loop().time()
            # then the request fails within seconds, not after the 30 s timeout
            with pytest.raises(SourceError, match="link"):
                await asyncio.wait_for(request, 10)
            return asyncio.get_running_loop().time() - started
        finally:
            await source.close()

    assert asyncio.run(ask_then_drop()) < 5


def test_a_minute_closed_while_the_upstream_lagged_is_right_when_the_collector_then_stops(aws_env, upstream):
    # given a collector streaming EURUSD-OTC, its history repaired
    collector, store, state = collector_for(aws_env, upstream, symbols=["EURUSD-OTC"])
    lagging_minute = []

    async def lag_then_stop():
        # when the upstream lags until the collector closed a minute without its last ticks
        lagging_minute.append(await lag_until_a_minute_closes(collector, store, upstream))
        # and then the collector stops before they come

    asyncio.run(run_for(collector, 0, during=lag_then_stop))
    # then the minute that closed while the upstream lagged is the upstream's own bar
    bars = store.read("EURUSD-OTC")
    assert bars[-1][0] == lagging_minute[0]
    assert_continuous(bars)
    assert_market_bars("EURUSD-OTC", bars)
