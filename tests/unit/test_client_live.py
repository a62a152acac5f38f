"""Given fake WebSocket servers on 127.0.0.1 that speak the spec's protocol (normal, dropping
mid-stream, refusing the key, silent, ...), when ChartApiClient subscribes live, then a partner's
on_msg sees every message once and in order, reconnections are transparent, and a refused key
is one AuthenticationError."""

from __future__ import annotations

import asyncio
import json
import threading
import time

import httpx
import pytest
from chart_fakes import FakeLiveServer
from tradowix_bot.client.chart_client import (
    AsyncChartApiClient,
    AuthenticationError,
    ChartApiClient,
    ChartApiError,
    LiveOptions,
    NotFoundError,
    SymbolForbiddenError,
)

KEY = "twk_" + "w" * 40
FAST = LiveOptions(backoff=0.01, max_backoff=0.05)


def status_transport(ws_url: str | None, candles=None) -> httpx.MockTransport:
    """The HTTP side: /api/live/status gives the fake WS server's URL (with the key, as ours does);
    /api/candles answers `candles` (a list, or a function giving what is stored now) within the
    range asked (the client fills missed closes from it)."""

    def handler(request):
        if request.url.path == "/api/candles":
            q = request.url.params
            lo, hi = int(q.get("start", 0)), int(q.get("end", 1 << 62))
            stored = candles() if callable(candles) else candles or []
            bars = [c for c in stored if lo <= c["time"] < hi]
            return httpx.Response(200, json={"symbol": q["symbol"], "count": len(bars), "candles": bars})
        assert request.url.path == "/api/live/status"
        return httpx.Response(200, json={"live": True, "ws_url": ws_url and f"{ws_url}/?api_key={KEY}"})

    return httpx.MockTransport(handler)


async def collect(server, n, **kw):
    got: list[dict] = []
    client = AsyncChartApiClient("http://api.test", KEY, transport=status_transport(server.url))
    await asyncio.wait_for(
        client.subscribe_live(got.append, symbol="BTCUSD-OTC", timeframe=300, max_messages=n, **kw), 10
    )
    return got


def test_subscribes_and_delivers_every_message_in_order():
    async def main():
        async with FakeLiveServer(bars_per_connection=3) as server:
            got = await collect(server, 5, options=FAST)
            return server, got

    server, got = asyncio.run(main())
    assert server.subscribes == [{"type": "subscribe", "symbol": "BTCUSD-OTC", "timeframe": 300}]
    assert [m["type"] for m in got] == ["status", "history", "bar", "bar", "bar"]
    assert [m["candle"]["close"] for m in got[2:]] == [1.0, 1.01, 1.02]
    # the key went in the URL the status gave and in the handshake header
    assert f"api_key={KEY}" in server.queries[0] and server.headers[0] == KEY


def test_frames_that_are_not_json_objects_are_skipped():
    async def main():
        async with FakeLiveServer(bars_per_connection=1, junk_first=True) as server:
            return await collect(server, 3, options=FAST)

    assert [m["type"] for m in asyncio.run(main())] == ["status", "history", "bar"]


def test_server_closing_mid_stream_reconnects_and_resubscribes():
    # given a server that drops every connection after 2 bars
    async def main():
        async with FakeLiveServer(bars_per_connection=5, drop_after=2) as server:
            got = await collect(server, 10, options=FAST)
            return server, got

    server, got = asyncio.run(main())
    # then the client came back each time and subscribed again, and the feed continued
    assert server.connections == 3
    assert server.subscribes == [{"type": "subscribe", "symbol": "BTCUSD-OTC", "timeframe": 300}] * 3
    bars = [m["candle"]["close"] for m in got if m["type"] == "bar"]
    assert bars == [1.0, 1.01, 1.02, 1.03, 1.04, 1.05]
    # one history for the bot: a reconnect's history is not handed over again (nothing was missed)
    assert [m["type"] for m in got].count("history") == 1


@pytest.mark.parametrize("refusal", ["401", "4401"])
def test_refused_key_is_one_authentication_error_for_401_and_4401(refusal):
    async def main():
        async with FakeLiveServer(refuse=refusal) as server:
            with pytest.raises(AuthenticationError) as info:
                await collect(server, 1, options=FAST)
            return server, info.value

    server, error = asyncio.run(main())
    assert error.status == 401 and error.error == "invalid_key"
    assert server.connections <= 1  # not retried: a refused key does not fix itself


def test_renewal_before_the_two_hour_limit_is_transparent():
    # given connections renewed every 0.3 s (2 hours on AWS) and a steady feed
    async def main():
        async with FakeLiveServer(feed=True, interval=0.01) as server:
            got = await collect(server, 80, options=LiveOptions(renew_after=0.3, backoff=0.01))
            return server, got

    server, got = asyncio.run(main())
    # then new connections were opened, yet the bot saw one status/history and no gap in the feed
    assert server.connections >= 2
    assert [m["type"] for m in got[:2]] == ["status", "history"]
    assert all(m["type"] == "bar" for m in got[2:])
    seen = sorted({m["candle"]["time"] for m in got[2:]})
    assert seen == list(range(seen[0], seen[-1] + 60, 60))


def test_a_silent_connection_gets_pings_then_is_replaced():
    # given a server that accepts but never says anything (a half-dead connection)
    async def main():
        async with FakeLiveServer(silent=True) as server:
            stop = asyncio.Event()

            async def stop_at_second_connection():
                while server.connections < 2:
                    await asyncio.sleep(0.02)
                stop.set()

            watcher = asyncio.create_task(stop_at_second_connection())
            client = AsyncChartApiClient("http://api.test", KEY, transport=status_transport(server.url))
            options = LiveOptions(keepalive=0.1, dead_after=0.5, backoff=0.01, max_backoff=0.02)
            await asyncio.wait_for(client.subscribe_live(print, symbol="X", stop=stop, options=options), 10)
            await watcher
            return server

    server = asyncio.run(main())
    # then the client kept it alive with application pings, and gave up on it for a new one
    assert {"type": "ping"} in server.frames
    assert server.frames.count({"type": "subscribe", "symbol": "X", "timeframe": 60}) == 2


def test_sync_call_of_the_spec_blocks_until_stopped():
    # given a fake server running in its own thread (as a remote server would)
    ready = threading.Event()
    stop_server = threading.Event()
    box = {}

    def run_server():
        async def main():
            async with FakeLiveServer(bars_per_connection=100, interval=0.01) as server:
                box["server"] = server
                ready.set()
                while not stop_server.is_set():
                    await asyncio.sleep(0.05)

        asyncio.run(main())

    thread = threading.Thread(target=run_server, daemon=True)
    thread.start()
    assert ready.wait(5)
    client = ChartApiClient("http://api.test", KEY, transport=status_transport(box["server"].url))
    got = []
    stop = threading.Event()

    def on_msg(msg):  # the spec's example shape
        if msg.get("type") == "bar":
            got.append((msg["symbol"], msg["candle"]["close"]))
            if len(got) == 4:
                stop.set()

    try:
        client.subscribe_live_sync(on_msg, symbol="BTCUSD-OTC", timeframe=60, stop=stop, options=FAST)
    finally:
        stop_server.set()
        thread.join(5)
    assert got == [("BTCUSD-OTC", 1.0), ("BTCUSD-OTC", 1.01), ("BTCUSD-OTC", 1.02), ("BTCUSD-OTC", 1.03)]


def test_bad_timeframe_is_refused_before_connecting():
    client = ChartApiClient("http://api.test", KEY, transport=status_transport(None))
    with pytest.raises(ValueError, match="multiple of 60"):
        client.subscribe_live_sync(print, symbol="BTCUSD-OTC", timeframe=90)


def test_sync_call_works_from_inside_an_event_loop():
    # given a partner calling the blocking API from async code (a notebook, a web app)
    from chart_fakes import FakeDeployment

    with FakeDeployment({"BTCUSD-OTC": []}, key=KEY, bars_per_connection=2) as deployment:
        client = ChartApiClient(deployment.url, KEY)
        got = []

        async def partner_code():
            client.subscribe_live_sync(got.append, symbol="BTCUSD-OTC", timeframe=60, max_messages=4)

        asyncio.run(partner_code())
    # then it still streams (on a thread of its own) instead of failing on the running loop
    assert [m["type"] for m in got] == ["status", "history", "bar", "bar"]


# -- issue 10 items 7 and 8, issue 13 item 4 ------------------------------------------------------
T = 1_710_000_000  # a minute boundary


def bar(i: int, close: float | None = None) -> dict:
    return {"time": T + 60 * i, "open": 1.0, "high": 2.0, "low": 0.5, "close": close or 1.0 + i / 100}


class MarketServer:
    """A deployment's live side with a market behind it: bar i closes every `interval` seconds
    whether anyone listens or not. On subscribe: status, then a history of the last
    `history_bars` closed bars plus the forming one. Every `drop_after` closes, the connection
    is dropped (1011) and the market closes `skip` more bars before it answers again."""

    def __init__(
        self,
        *,
        interval=0.02,
        history_bars=3,
        drop_after=None,
        skip=0,
        refuse_after=None,
        lose=(),
        next_bar_at_once=False,
        store_lag=0.0,
    ):
        self.lose = set(lose)  # times of closes never sent (posts that failed); the connection stays
        # As our fan-out does: the next bar's first update right after a close; and a store that
        # holds a closed bar only `store_lag` s after it was published (its write ends later).
        self.next_bar_at_once, self.store_lag = next_bar_at_once, store_lag
        self.closed_at: dict[int, float] = {}
        self.interval, self.history_bars, self.drop_after, self.skip = (
            interval,
            history_bars,
            drop_after,
            skip,
        )
        self.refuse_after = refuse_after  # connections served before refusing the key (401)
        self.closed: list[dict] = [bar(i) for i in range(5)]  # the market's closed bars
        self.current = 5  # the forming bar's index
        self.subscribers: dict = {}
        self.connections = 0
        self.frames: list[dict] = []

    def process_request(self, connection, request):
        from websockets.datastructures import Headers
        from websockets.http11 import Response

        self.connections += 1
        if self.refuse_after is not None and self.connections > self.refuse_after:
            body = json.dumps({"error": "key_disabled", "message": "this API key is disabled"}).encode()
            return Response(401, "Unauthorized", Headers({"Content-Type": "application/json"}), body)
        return None

    def close_bar(self) -> dict:
        done = bar(self.current)
        self.closed.append(done)
        self.closed_at[done["time"]] = time.monotonic()
        self.current += 1
        return done

    def stored(self) -> list[dict]:
        """What /api/candles can read now."""
        now = time.monotonic()
        return [
            c for c in self.closed if now - self.closed_at.get(c["time"], float("-inf")) >= self.store_lag
        ]

    async def handler(self, ws):
        closes = 0
        async for frame in ws:
            msg = json.loads(frame)
            self.frames.append(msg)
            if msg["type"] == "ping":
                await ws.send(json.dumps({"type": "pong"}))
                continue
            sym, tf = msg["symbol"], msg["timeframe"]
            history = self.closed[-self.history_bars :] + [bar(self.current, 0.5)]
            await ws.send(json.dumps({"type": "status", "connected": True, "upstream_ready": True}))
            await ws.send(json.dumps({"type": "history", "symbol": sym, "timeframe": tf, "candles": history}))
            queue: asyncio.Queue = asyncio.Queue()
            self.subscribers[ws] = queue
            try:
                while True:
                    getting = asyncio.ensure_future(queue.get())
                    closing = asyncio.ensure_future(ws.wait_closed())
                    await asyncio.wait({getting, closing}, return_when=asyncio.FIRST_COMPLETED)
                    closing.cancel()
                    if not getting.done():  # the client left
                        getting.cancel()
                        return
                    done = getting.result()
                    if done["time"] not in self.lose:
                        await ws.send(
                            json.dumps(
                                {
                                    "type": "bar",
                                    "symbol": sym,
                                    "timeframe": tf,
                                    "candle": done,
                                    "closed": True,
                                }
                            )
                        )
                    if self.next_bar_at_once:
                        forming = {**bar(self.current), "close": 0.5}
                        await ws.send(
                            json.dumps(
                                {
                                    "type": "bar",
                                    "symbol": sym,
                                    "timeframe": tf,
                                    "candle": forming,
                                    "closed": False,
                                }
                            )
                        )
                    if done["time"] in self.lose:
                        continue
                    closes += 1
                    if self.drop_after and closes >= self.drop_after:
                        for _ in range(self.skip):  # the market goes on while the client is away
                            self.close_bar()
                        await ws.close(1011, "server going away")
                        return
            finally:
                self.subscribers.pop(ws, None)

    async def run_market(self):
        while True:
            await asyncio.sleep(self.interval)
            done = self.close_bar()
            for queue in list(self.subscribers.values()):
                queue.put_nowait(done)

    async def __aenter__(self):
        from websockets.asyncio.server import serve

        self.market = asyncio.create_task(self.run_market())
        self.server = await serve(self.handler, "127.0.0.1", 0, process_request=self.process_request)
        self.url = f"ws://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"
        return self

    async def __aexit__(self, *exc):
        self.market.cancel()
        self.server.close()
        await self.server.wait_closed()


def closed_bars(got: list[dict]) -> list[dict]:
    return [m for m in got if m.get("type") == "bar" and m.get("closed")]


@pytest.mark.parametrize(
    "history_bars, skip", [(20, 3), (2, 6)], ids=["from the new history", "from /api/candles"]
)
def test_after_reconnects_every_closed_bar_reaches_the_bot_once_in_order(history_bars, skip):
    # given a market closing bars all the time, and a server that drops the connection every
    # 3 closes and then closes `skip` bars before the client is back (more than a history holds
    # in the second case)
    async def main():
        async with MarketServer(history_bars=history_bars, drop_after=3, skip=skip) as market:
            got: list[dict] = []
            client = AsyncChartApiClient(
                "http://api.test", KEY, transport=status_transport(market.url, market.closed)
            )

            def on_msg(msg):
                got.append(msg)
                if len(closed_bars(got)) >= 25:
                    stop.set()

            stop = asyncio.Event()
            await asyncio.wait_for(
                client.subscribe_live(on_msg, symbol="BTCUSD-OTC", stop=stop, options=FAST), 20
            )
            return market, got

    market, got = asyncio.run(main())
    # then the bot got one history, and after it every closed bar of the market, once, in order
    assert [m["type"] for m in got].count("history") == 1 and market.connections >= 4
    first_live = got[[m["type"] for m in got].index("history")]["candles"][-2]["time"]
    times = [m["candle"]["time"] for m in closed_bars(got)]
    expected = [c["time"] for c in market.closed if c["time"] > first_live][: len(times)]
    assert times == expected
    assert any(m.get("missed") for m in closed_bars(got))  # some came from the fill, marked so


def test_a_frozen_server_is_noticed_by_its_unanswered_ping():
    # given a server that sends history, then freezes (no bar, no pong)
    async def main():
        async with FakeLiveServer(silent=True) as server:
            stop = asyncio.Event()

            async def stop_at_second_connection():
                while server.connections < 2:
                    await asyncio.sleep(0.02)
                stop.set()

            watcher = asyncio.create_task(stop_at_second_connection())
            client = AsyncChartApiClient("http://api.test", KEY, transport=status_transport(server.url))
            options = LiveOptions(keepalive=0.1, pong_timeout=0.2, backoff=0.01)
            await asyncio.wait_for(client.subscribe_live(print, symbol="X", stop=stop, options=options), 10)
            await watcher
            return server

    server = asyncio.run(main())
    # then the client pinged, got no answer, and connected again
    assert {"type": "ping"} in server.frames and server.connections >= 2
    # and by default a dead connection is noticed within 45 s of silence (was 180 s)
    defaults = LiveOptions()
    assert defaults.keepalive + defaults.pong_timeout <= 45


def test_reconnect_backoff_is_capped_while_the_server_answers(monkeypatch):
    from tradowix_bot.client import live_client

    waits: list[float] = []

    async def no_wait(seconds, stopped):
        waits.append(seconds)

    monkeypatch.setattr(live_client, "_sleep_unless", no_wait)
    monkeypatch.setattr(live_client.random, "uniform", lambda a, b: b)  # the longest wait jitter allows

    # given a server that drops every connection right after its history, twelve times
    async def main():
        async with FakeLiveServer(bars_per_connection=1, drop_after=0) as server:
            await collect(server, 14, options=LiveOptions(backoff=0.5))
            return server

    server = asyncio.run(main())
    # then no wait between attempts passed the default cap (8 s; it was 30 s)
    assert server.connections >= 12 and len(waits) >= 11
    assert max(waits) <= 10


@pytest.mark.parametrize(
    "code, error_type", [("symbol_forbidden", SymbolForbiddenError), ("no_data", NotFoundError)]
)
def test_a_subscription_the_server_refuses_raises_the_typed_error(code, error_type):
    # given a server that answers the only subscription with an error (e.g. FOO-OTC, or a
    # symbol the key may not read)
    async def main():
        async with FakeLiveServer(errors={"BTCUSD-OTC": code}) as server:
            got: list[dict] = []
            client = AsyncChartApiClient("http://api.test", KEY, transport=status_transport(server.url))
            with pytest.raises(error_type) as info:
                await asyncio.wait_for(
                    client.subscribe_live(got.append, symbol="BTCUSD-OTC", options=FAST), 10
                )
            return got, info.value

    got, error = asyncio.run(main())
    # then the stream ends with the typed error instead of waiting forever; the bot saw the error too
    assert error.error == code and "BTCUSD-OTC" in error.message
    assert got[-1]["type"] == "error"


def test_one_refused_subscription_among_several_does_not_end_the_stream():
    async def main():
        async with FakeLiveServer(errors={"FOO-OTC": "no_data"}, bars_per_connection=2) as server:
            got: list[dict] = []
            client = AsyncChartApiClient("http://api.test", KEY, transport=status_transport(server.url))
            await asyncio.wait_for(
                client.subscribe_live(
                    got.append, symbols=["FOO-OTC", "BTCUSD-OTC"], max_messages=5, options=FAST
                ),
                10,
            )
            return got

    got = asyncio.run(main())
    assert [m["type"] for m in got] == ["error", "status", "history", "bar", "bar"]


@pytest.mark.parametrize("refusal", ["403", "4403"])
def test_a_forbidden_handshake_is_not_an_authentication_error(refusal):
    async def main():
        async with FakeLiveServer(refuse=refusal) as server:
            with pytest.raises(ChartApiError) as info:
                await collect(server, 1, options=FAST)
            return server, info.value

    server, error = asyncio.run(main())
    assert isinstance(error, SymbolForbiddenError) and not isinstance(error, AuthenticationError)
    assert error.status == 403 and server.connections == 1


@pytest.mark.parametrize("refusal", ["500", "1008"])
def test_a_server_error_or_policy_close_is_retried_a_few_times_then_raised(refusal):
    async def main():
        async with FakeLiveServer(refuse=refusal, refuse_reason="Policy Violation") as server:
            states: list[str] = []
            with pytest.raises(ChartApiError) as info:
                await collect(
                    server, 1, options=LiveOptions(backoff=0.01, max_refusals=4), on_state=states.append
                )
            return server, info.value, states

    server, error, states = asyncio.run(main())
    assert server.connections == 4 and states[-1] == "failed"
    assert error.status == (500 if refusal == "500" else None)
    assert error.error == ("internal_error" if refusal == "500" else "policy_violation")


def test_a_key_disabled_while_streaming_is_an_authentication_error_with_its_code():
    # given a server that serves one connection, then refuses the key (disabled meanwhile)
    async def main():
        async with MarketServer(drop_after=2, refuse_after=1) as market:
            states: list[str] = []
            client = AsyncChartApiClient(
                "http://api.test", KEY, transport=status_transport(market.url, market.closed)
            )
            with pytest.raises(AuthenticationError) as info:
                await asyncio.wait_for(
                    client.subscribe_live(print, symbol="BTCUSD-OTC", options=FAST, on_state=states.append),
                    10,
                )
            return info.value, states

    error, states = asyncio.run(main())
    # then the code is the server's, and the bot heard every state change
    assert (error.status, error.error) == (401, "key_disabled")
    assert states == ["connecting", "live", "reconnecting", "failed"]


def test_4401_with_the_code_as_reason_keeps_the_code():
    async def main():
        async with FakeLiveServer(refuse="4401", refuse_reason="key_disabled") as server:
            with pytest.raises(AuthenticationError) as info:
                await collect(server, 1, options=FAST)
            return info.value

    assert asyncio.run(main()).error == "key_disabled"


def test_several_timeframes_of_one_symbol_on_one_connection():
    async def main():
        async with FakeLiveServer(feed=True, interval=0.02) as server:
            got: list[dict] = []
            client = AsyncChartApiClient("http://api.test", KEY, transport=status_transport(server.url))
            await asyncio.wait_for(
                client.subscribe_live(
                    got.append, symbol="BTCUSD-OTC", timeframes=[60, 300], max_messages=12, options=FAST
                ),
                10,
            )
            return server, got

    server, got = asyncio.run(main())
    assert server.connections == 1
    assert server.subscribes == [
        {"type": "subscribe", "symbol": "BTCUSD-OTC", "timeframe": 60},
        {"type": "subscribe", "symbol": "BTCUSD-OTC", "timeframe": 300},
    ]
    assert {m["timeframe"] for m in got if m["type"] == "history"} == {60, 300}
    assert {m["timeframe"] for m in got if m["type"] == "bar"} == {60, 300}


def test_bad_timeframes_are_refused_before_connecting():
    client = ChartApiClient("http://api.test", KEY, transport=status_transport(None))
    with pytest.raises(ValueError, match="multiple of 60"):
        client.subscribe_live_sync(print, symbol="BTCUSD-OTC", timeframes=[60, 90])
    with pytest.raises(ValueError):
        client.subscribe_live_sync(print, symbol="BTCUSD-OTC", timeframes=[])


def stream_closes(market: MarketServer, closes: int, stored=None) -> list[dict]:
    """What a bot gets from `market` until it has `closes` closed bars; /api/candles answers
    `stored()` (default: every closed bar)."""

    async def main():
        async with market:
            got: list[dict] = []
            candles = stored or (lambda: market.closed)
            client = AsyncChartApiClient(
                "http://api.test", KEY, transport=status_transport(market.url, candles)
            )
            stop = asyncio.Event()

            def on_msg(msg):
                got.append(msg)
                if len(closed_bars(got)) >= closes:
                    stop.set()

            await asyncio.wait_for(
                client.subscribe_live(on_msg, symbol="BTCUSD-OTC", stop=stop, options=FAST), 10
            )
            return got

    return asyncio.run(main())


def test_closes_the_server_never_sent_are_filled_from_candles():
    # given a connection that stays up while two closes never reach it (their posts failed)
    got = stream_closes(MarketServer(lose={T + 60 * 8, T + 60 * 9}), 10)
    # then the bot still gets every close once, in order, the two lost ones from /api/candles
    times = [m["candle"]["time"] for m in closed_bars(got)]
    assert times == [T + 60 * i for i in range(5, 5 + len(times))]
    assert [m["candle"]["time"] for m in closed_bars(got) if m.get("missed")] == [T + 60 * 8, T + 60 * 9]


def test_a_rate_limited_subscribe_is_sent_again_later():
    # given a server that answers the first subscribe with rate_limited (a subscribe flood)
    async def main():
        async with FakeLiveServer(errors={"BTCUSD-OTC": "rate_limited"}, bars_per_connection=1) as server:
            got: list[dict] = []
            client = AsyncChartApiClient("http://api.test", KEY, transport=status_transport(server.url))

            async def lift_the_limit():
                while len(server.subscribes) < 1:
                    await asyncio.sleep(0.01)
                server.errors.clear()

            lifter = asyncio.create_task(lift_the_limit())
            await asyncio.wait_for(
                client.subscribe_live(got.append, symbol="BTCUSD-OTC", max_messages=4, options=FAST), 10
            )
            await lifter
            return server, got

    server, got = asyncio.run(main())
    # then the client subscribed again on the same connection and streams
    assert server.connections == 1 and len(server.subscribes) == 2
    assert [m["type"] for m in got] == ["error", "status", "history", "bar"]


def test_a_hole_the_store_did_not_hold_yet_is_looked_up_again_at_the_next_close():
    # given a server that publishes a close before its store holds it (the write ends 30 ms
    # later), a close whose post failed, and the next bar's first update sent at once: the
    # lookup that update causes finds nothing yet
    market = MarketServer(interval=0.08, lose={T + 60 * 8}, next_bar_at_once=True, store_lag=0.03)
    got = stream_closes(market, 8, stored=market.stored)
    # then the lost close reaches the bot when the next bar closes, before it, in order
    times = [m["candle"]["time"] for m in closed_bars(got)]
    assert times == [T + 60 * i for i in range(5, 5 + len(times))]
    assert [m["candle"]["time"] for m in closed_bars(got) if m.get("missed")] == [T + 60 * 8]
