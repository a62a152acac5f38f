"""ChartApiClient live: fake WebSocket servers on 127.0.0.1 that speak the spec's protocol.

Each test says how the server behaves (normal, drops mid-stream, refuses the key, ...)
and checks what a partner's on_msg sees."""

from __future__ import annotations

import asyncio
import json
import threading

import httpx
import pytest
from tradowix_bot.chart_client import (
    AsyncChartApiClient,
    AuthenticationError,
    ChartApiClient,
    LiveOptions,
)
from websockets.asyncio.server import serve
from websockets.datastructures import Headers
from websockets.http11 import Response

KEY = "twk_" + "w" * 40
FAST = LiveOptions(backoff=0.01, max_backoff=0.05)


def candle(i: int) -> dict:
    return {"time": 1710000000 + 60 * i, "open": 1.0, "high": 1.2, "low": 0.9, "close": 1.0 + i / 100}


class FakeLiveServer:
    """Speaks the spec: on subscribe -> status, history, then `bars_per_connection` bar messages.

    `drop_after`: close the connection (code 1011) after that many bars;
    `refuse`: "401" refuses the handshake, "4401" accepts then closes with 4401.
    """

    def __init__(
        self,
        *,
        bars_per_connection=3,
        drop_after=None,
        refuse=None,
        junk_first=False,
        interval=0.0,
        feed=False,
    ):
        self.bars_per_connection = bars_per_connection
        self.drop_after = drop_after
        self.refuse = refuse
        self.junk_first = junk_first
        self.interval = interval
        self.connections = 0
        self.subscribes: list[dict] = []
        self.queries: list[str] = []
        self.headers: list[str | None] = []
        self.next_bar = 0  # one shared bar sequence across connections
        self.server = None
        # feed=True: like a real deployment, one bar every `interval` goes to every subscriber
        self.feed = feed
        self.subscribers: set = set()

    def process_request(self, connection, request):
        self.queries.append(request.path)
        self.headers.append(request.headers.get("X-Api-Key"))
        if self.refuse == "401":
            body = json.dumps({"error": "invalid_key", "message": "API key invalid or disabled"}).encode()
            return Response(401, "Unauthorized", Headers({"Content-Type": "application/json"}), body)
        return None

    async def handler(self, ws):
        self.connections += 1
        if self.refuse == "4401":
            await ws.close(4401, "API key required or invalid")
            return
        if self.junk_first:
            await ws.send("this is not json")
            await ws.send("[1, 2]")
        sent = 0
        async for frame in ws:
            msg = json.loads(frame)
            if msg.get("type") == "ping":
                await ws.send(json.dumps({"type": "pong"}))
                continue
            self.subscribes.append(msg)
            sym, tf = msg["symbol"], msg["timeframe"]
            await ws.send(json.dumps({"type": "status", "connected": True, "upstream_ready": True}))
            await ws.send(
                json.dumps(
                    {"type": "history", "symbol": sym, "timeframe": tf, "candles": [candle(-1)], "timing": {}}
                )
            )
            if self.feed:
                self.subscribers.add((ws, sym, tf))
                continue
            while sent < self.bars_per_connection:
                if self.drop_after is not None and sent >= self.drop_after:
                    await ws.close(1011, "server going away")
                    return
                i = self.next_bar
                self.next_bar += 1
                await ws.send(
                    json.dumps(
                        {"type": "bar", "symbol": sym, "timeframe": tf, "candle": candle(i), "closed": True}
                    )
                )
                sent += 1
                await asyncio.sleep(self.interval)

    async def publish(self):
        while True:
            await asyncio.sleep(self.interval)
            i = self.next_bar
            self.next_bar += 1
            for ws, sym, tf in list(self.subscribers):
                msg = {"type": "bar", "symbol": sym, "timeframe": tf, "candle": candle(i), "closed": True}
                try:
                    await ws.send(json.dumps(msg))
                except Exception:  # noqa: BLE001 - a gone subscriber
                    self.subscribers.discard((ws, sym, tf))

    async def __aenter__(self):
        self.publisher = asyncio.create_task(self.publish()) if self.feed else None
        self.server = await serve(self.handler, "127.0.0.1", 0, process_request=self.process_request)
        port = self.server.sockets[0].getsockname()[1]
        self.url = f"ws://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *exc):
        if self.publisher:
            self.publisher.cancel()
        self.server.close()
        await self.server.wait_closed()


def status_transport(ws_url: str | None) -> httpx.MockTransport:
    """The HTTP side: /api/live/status gives the fake WS server's URL (with the key, as ours does)."""

    def handler(request):
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
            got = await collect(server, 12, options=FAST)
            return server, got

    server, got = asyncio.run(main())
    # then the client came back each time and subscribed again, and the feed continued
    assert server.connections == 3
    assert server.subscribes == [{"type": "subscribe", "symbol": "BTCUSD-OTC", "timeframe": 300}] * 3
    bars = [m["candle"]["close"] for m in got if m["type"] == "bar"]
    assert bars == [1.0, 1.01, 1.02, 1.03, 1.04, 1.05]
    assert [m["type"] for m in got].count("history") == 3


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
