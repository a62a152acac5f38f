"""Given a stand-in upstream that speaks the Tradowix protocol on 127.0.0.1, when the tradowix
adapter collects from it, then bars are right and every bad frame or fault is survived.

The collector and the stand-in share a ManualClock: the test moves the time, then waits until
every frame sent has arrived and every stream has caught up (`StandinUpstream.idle`), so each
run sees the same ticks at the same market times however busy the machine is."""

from __future__ import annotations

import asyncio
import json

import pytest
from collector_harness import START, Harness, assert_continuous, assert_market_bars, expected
from tradowix_bot.collector import Collector, ManualClock
from tradowix_bot.collector.archive import FilesTarget, StoreTarget, archive
from tradowix_bot.collector.sources import SourceError
from tradowix_bot.collector.synthetic_market import SyntheticMarket
from tradowix_bot.collector.tradowix import TradowixSource
from tradowix_bot.server.state import StateStore
from tradowix_bot.server.store import CandleStore
from upstream_standin import StandinUpstream


@pytest.fixture
def standin():
    """The stand-in upstream on a ManualClock (the `upstream` fixture's runs 30x on its own)."""
    server = StandinUpstream(ManualClock(START)).start()
    yield server
    server.stop()


def collector_for(aws_env, upstream, token="good-token", auth_timeout=5.0, **kw):
    clock = upstream.clock
    source = TradowixSource(
        upstream.url, token, clock, ping_interval=1.0, auth_timeout=auth_timeout, auth_backoff=60
    )
    store = CandleStore(aws_env["CandlesBucket"])
    state = StateStore(aws_env["StateTable"])
    kw.setdefault("backfill_days", 30 / 1440)
    collector = Collector(source, store, state, clock=clock, lease_seconds=30, auth_backoff=60, **kw)
    return collector, store, state


def harness(collector, upstream) -> Harness:
    return Harness(upstream.clock, collector, idle=lambda: upstream.idle(collector.source))


async def wait_until(condition, timeout: float, step: float = 0.05) -> bool:
    """Real time: for what runs on wall time (keepalive pings, I/O timeouts)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            return False
        await asyncio.sleep(step)
    return True


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


def test_collects_from_the_upstream_and_survives_garbage_frames(aws_env, standin):
    # given an upstream that also sends frames that are not JSON, unknown types and bad ticks
    standin.extra_frames = BAD_FRAMES
    collector, store, state = collector_for(aws_env, standin, symbols=None)
    checked = ("EURUSD-OTC", "BTCUSD-OTC")

    async def scenario():
        run = harness(collector, standin)
        await run.start()
        # when the collector links every symbol (from `instruments`), backfills them and runs on
        # for two more minutes
        await run.until(collector.backfilled.is_set, limit=30)
        await run.advance(130)
        assert await wait_until(lambda: standin.pings > 0, 10)  # keepalive runs on wall time
        await run.stop()

    asyncio.run(scenario())
    # then the session cookie and handshake were used, and every symbol is covered by its own link
    assert "session-token=good-token" in standin.cookies[0]
    assert set(standin.subscriptions) == set(SyntheticMarket().symbols)
    # and the catalog learned from `instruments` keeps the categories
    assert {i.category for i in store.read_catalog()} >= {"crypto", "currencies", "stocks"}
    # and the bars equal the upstream's own prices, continuous, history merged with ticks
    now = int(standin.clock.now())
    for symbol in checked:
        bars = store.read(symbol)
        assert_continuous(bars)
        assert_market_bars(symbol, bars)
        assert bars[-1][0] == now - now % 60 - 60 and len(bars[-1]) == 6  # the last from its ticks
    # and the garbage was counted, not fatal
    rejected = collector.status_record()["rejected"]
    assert rejected["not_json"] >= 1 and rejected["unknown_type"] >= 1 and rejected["bad_tick"] >= 4
    assert rejected["not_a_message"] >= 1 and rejected["bad_tick_message"] >= 1


def test_history_pages_overlapping_stored_bars_change_nothing_stored(aws_env, standin):
    # given stored bars (deliberately different from the upstream's) and pages that overlap them
    standin.history_overlap = 5
    minute = START - START % 60
    mine = [(t, 9.0, 9.0, 9.0, 9.0) for t in range(minute - 900, minute - 600, 60)]
    collector, store, state = collector_for(aws_env, standin, symbols=["EURUSD-OTC"])
    store.write("EURUSD-OTC", mine)

    async def scenario():
        run = harness(collector, standin)
        await run.start()
        await run.advance(90)
        await run.stop()

    asyncio.run(scenario())
    bars = store.read("EURUSD-OTC")
    assert_continuous(bars)
    assert bars[: len(mine)] == mine  # stored minutes untouched
    assert_market_bars("EURUSD-OTC", bars[len(mine) :])


def test_a_refused_token_is_reported_and_retried_only_after_the_back_off(aws_env, standin):
    collector, store, state = collector_for(aws_env, standin, token="expired-token", symbols=["EURUSD-OTC"])

    async def scenario():
        run = harness(collector, standin)
        await run.start()
        await run.advance(59, step=1)
        status = state.upstream_status()
        attempts = standin.auth_attempts
        await run.advance(2, step=1)
        await run.stop()
        return status, attempts

    status, attempts_in_the_first_minute = asyncio.run(scenario())
    # then the refusal is reported (a code; the detail for the owner), never the token
    assert status["authenticated"] is False and status["error"] == "upstream_auth_failed"
    assert "refused" in status["last_error"]
    assert "expired-token" not in json.dumps(status)
    # and no hot loop: one attempt, the next one only once the 60 s back-off is over
    assert attempts_in_the_first_minute == 1 and standin.auth_attempts == 2


def test_a_token_the_owner_replaces_is_used_within_seconds_without_a_restart(aws_env, standin):
    # given a collector whose token the upstream refuses, and a store the owner can put a new
    # token in (the admin panel writes SSM; here a plain holder read the same way)
    stored = {"token": "expired-token"}
    collector, store, state = collector_for(aws_env, standin, token="expired-token", symbols=["EURUSD-OTC"])
    collector.source.reload_token = lambda: stored["token"]
    collector.source.token_recheck_seconds = 5

    async def scenario():
        run = harness(collector, standin)
        await run.start()
        await run.advance(2, step=1)
        assert state.upstream_status()["error"] == "upstream_auth_failed"  # refused, backing off (60 s)
        stored["token"] = "good-token"  # when the owner stores a fresh token
        took = await run.until(lambda: (state.upstream_status() or {}).get("authenticated"), limit=30, step=1)
        await run.until(lambda: store.read("EURUSD-OTC"), limit=30, step=1)
        status = state.upstream_status()
        await run.stop()
        return took, status

    took, status = asyncio.run(scenario())
    # then, long before the 60 s back-off was over, it authenticated and collected
    assert took <= 5 + 5 + 1  # the next re-read of the token store, and a status write
    assert "good-token" not in json.dumps(status) and "expired-token" not in json.dumps(status)


def test_an_upstream_that_never_confirms_the_session_is_reported(aws_env, standin):
    standin.never_authenticate = True
    collector, store, state = collector_for(aws_env, standin, auth_timeout=1.0, symbols=["EURUSD-OTC"])

    async def scenario():
        run = harness(collector, standin)
        await run.start()  # (the handshake times out on wall time: 1 s)
        await run.advance(10, step=1)
        await run.stop()

    asyncio.run(scenario())
    status = state.upstream_status()
    assert status["authenticated"] is False and status["error"] == "upstream_auth_failed"
    assert "did not confirm" in status["last_error"]
    assert standin.connections == 1


def test_a_dropped_link_reconnects_and_the_gap_is_repaired(aws_env, standin):
    collector, store, state = collector_for(aws_env, standin, symbols=["EURUSD-OTC"])

    async def scenario():
        run = harness(collector, standin)
        await run.start()
        await run.advance(60)
        await run.to_second(20)
        standin.drop_links()
        await run.advance(0.3, step=0.3)
        standin.drop_links()
        await run.advance(150, step=1)
        await run.stop()

    asyncio.run(scenario())
    assert standin.connections >= 4  # control + stream, then both again
    bars = store.read("EURUSD-OTC")
    assert_continuous(bars)
    assert_market_bars("EURUSD-OTC", bars)
    now = int(standin.clock.now())
    assert bars[-1][0] == now - now % 60 - 60


def test_archive_backfills_all_symbols_resumably_and_a_second_run_changes_nothing(aws_env, standin, tmp_path):
    upstream = standin
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


def test_a_stream_that_starts_a_minute_late_after_a_garbage_tick_keeps_that_minute_right(aws_env, standin):
    # given an upstream that gets round to a subscription only 10 s into the next minute and
    # first sends a tick of that symbol with a garbage timestamp (1 ms after 1970)
    standin.late_start = 10
    standin.extra_frames = [
        json.dumps({"type": "quote", "data": {"symbol": "EURUSD-OTC", "price": 1.1, "timestamp": 1}})
    ]
    collector, store, state = collector_for(aws_env, standin, symbols=["EURUSD-OTC"])

    async def scenario():
        run = harness(collector, standin)
        await run.start()
        # when the collector runs until the first streamed minute (its first 10 s never streamed)
        # and the one after it are stored
        await run.advance(165, step=1)
        await run.stop()

    asyncio.run(scenario())
    # then that minute is the upstream's own bar (open included), and so is every other minute
    assert collector.status_record()["rejected"]["bad_tick"] == 1
    bars = store.read("EURUSD-OTC")
    first_streamed = START - START % 60 + 60
    assert first_streamed + 60 in [b[0] for b in bars]
    assert_continuous(bars)
    assert_market_bars("EURUSD-OTC", bars)


async def lag_until_a_minute_closes(run, collector, upstream) -> int:
    """With EURUSD-OTC's history repaired, the upstream holds its ticks back from 25 s into a
    minute on (the link stays up) until the collector has closed that minute on time, without
    the held-back ticks. Returns that minute."""
    await run.advance(60)
    await run.to_second(25)
    upstream.paused = True
    minute = int(run.clock.now()) - int(run.clock.now()) % 60
    await run.until(lambda: collector.tracked["EURUSD-OTC"].bars.closed_through > minute, limit=60, step=1)
    return minute


def test_a_minute_closed_while_the_upstream_lagged_is_repaired_when_the_link_then_dies(aws_env, standin):
    # given a collector streaming EURUSD-OTC, its history repaired
    collector, store, state = collector_for(aws_env, standin, symbols=["EURUSD-OTC"])

    async def scenario():
        run = harness(collector, standin)
        await run.start()
        # when the upstream lags until the collector closed a minute without its last ticks
        minute = await lag_until_a_minute_closes(run, collector, standin)
        # and then the link dies, taking the held-back ticks with it; it is linked again and repaired
        repairs = collector.repairs
        standin.drop_links()
        standin.paused = False
        await run.until(lambda: collector.repairs > repairs, limit=30, step=1)
        await run.stop()
        return minute

    lagging_minute = asyncio.run(scenario())
    # then the minute that closed while the upstream lagged is the upstream's own bar
    bars = store.read("EURUSD-OTC")
    assert lagging_minute in [b[0] for b in bars]
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


def test_a_minute_closed_while_the_upstream_lagged_is_right_when_the_collector_then_stops(aws_env, standin):
    # given a collector streaming EURUSD-OTC, its history repaired
    collector, store, state = collector_for(aws_env, standin, symbols=["EURUSD-OTC"])

    async def scenario():
        run = harness(collector, standin)
        await run.start()
        # when the upstream lags until the collector closed a minute without its last ticks
        minute = await lag_until_a_minute_closes(run, collector, standin)
        # and then the collector stops before they come
        await run.stop()
        return minute

    lagging_minute = asyncio.run(scenario())
    # then the minute that closed while the upstream lagged is the upstream's own bar
    bars = store.read("EURUSD-OTC")
    assert bars[-1][0] == lagging_minute
    assert_continuous(bars)
    assert_market_bars("EURUSD-OTC", bars)
