"""Given fake WebSocket servers on 127.0.0.1 that speak the spec's protocol (normal, dropping
mid-stream, refusing the key, silent, ...), when ChartApiClient subscribes live, then a partner's
on_msg sees every message once and in order, reconnections are transparent, and a refused key
is one AuthenticationError."""

from __future__ import annotations

import asyncio
import threading

import httpx
import pytest
from chart_fakes import FakeLiveServer
from tradowix_bot.chart_client import (
    AsyncChartApiClient,
    AuthenticationError,
    ChartApiClient,
    LiveOptions,
)

KEY = "twk_" + "w" * 40
FAST = LiveOptions(backoff=0.01, max_backoff=0.05)


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


@pytest.mark.parametrize("refusal", ["401", "4401", "4403"])
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
