"""Given the local stack (WebSocket gateway on --ws-port, @connections on the same port) whose
collector does not fan out, when partners connect with plain `websockets` clients and the
publisher runs in this process against the stack's @connections endpoint, then they get the
contract's messages, and bad frames, bursts, dead connections and disabled keys are handled."""

from __future__ import annotations

import asyncio
import json
import time

import httpx
import pytest
import websockets
from polling import eventually, eventually_async

pytestmark = pytest.mark.integration

SYMBOL = "BTCUSD-OTC"


# -- helpers --------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def local_stack(stack_without_fanout):
    """These tests run the publisher in this process and assert exact message sequences, so
    their stack's collector must not fan out live bars of its own."""
    return stack_without_fanout


@pytest.fixture(scope="module")
def partner(local_stack):
    """A key for this module's connections (deleted at the end: open mode comes back)."""
    key_id, raw = local_stack.create_key("ws-partner")
    eth_id, eth_raw = local_stack.create_key("ws-eth-only", "ETHUSD-OTC")
    eventually(  # warm functions see that keys now exist within KEY_CACHE_SECONDS (2 s in tests)
        lambda: httpx.get(local_stack.api_url + "/api/symbols", timeout=10).status_code == 401,
        30,
        "the API closed once keys exist",
    )
    yield {"raw": raw, "key_id": key_id, "eth_raw": eth_raw}
    local_stack.cli("keys", "delete", key_id)
    local_stack.cli("keys", "delete", eth_id)


@pytest.fixture
def stack_aws(local_stack, monkeypatch):
    """Point this process's boto3 at the stack's emulator (the publisher runs here)."""
    from tradowix_bot.server import aws

    info = json.loads((local_stack.data_dir / "local-stack.json").read_text())
    monkeypatch.setenv("AWS_ENDPOINT_URL", info["endpoint_url"])
    for k, v in info["aws_env"].items():
        monkeypatch.setenv(k, v)
    aws.reset()
    yield info
    aws.reset()


@pytest.fixture
def publisher(stack_aws):
    from tradowix_bot.server.keys import KeyRegistry
    from tradowix_bot.server.live_connections import ConnectionStore
    from tradowix_bot.server.live_fanout import LivePublisher
    from tradowix_bot.server.live_poster import ConnectionPoster
    from tradowix_bot.server.store import CandleStore

    pub = LivePublisher(
        ConnectionStore(stack_aws["connections_table"]),
        ConnectionPoster(stack_aws["ws_management_endpoint"]),
        KeyRegistry(stack_aws["keys_table"], cache_seconds=0),
        store=CandleStore(stack_aws["candles_bucket"]),
    )
    yield pub
    pub.stop()


def url(local_stack, raw_key: str | None) -> str:
    return local_stack.ws_url + (f"/?api_key={raw_key}" if raw_key else "")


async def recv(ws, timeout: float = 5.0) -> dict:
    return json.loads(await asyncio.wait_for(ws.recv(), timeout))


async def recv_until(ws, predicate, timeout: float = 10.0) -> list[dict]:
    got = []
    deadline = time.monotonic() + timeout
    while True:
        msg = await recv(ws, max(0.01, deadline - time.monotonic()))
        got.append(msg)
        if predicate(msg):
            return got


async def subscribe(ws, symbol=SYMBOL, timeframe=300) -> list[dict]:
    await ws.send(json.dumps({"type": "subscribe", "symbol": symbol, "timeframe": timeframe}))
    return [await recv(ws) for _ in range(3)]


# -- tests ----------------------------------------------------------------------------------
def test_bad_or_missing_key_closes_with_4401(local_stack, partner):
    async def scenario():
        for raw in (None, "twk_" + "x" * 43, "not-a-key"):
            async with websockets.connect(url(local_stack, raw)) as ws:
                with pytest.raises(websockets.ConnectionClosed) as closed:
                    await recv(ws)
                assert closed.value.rcvd.code == 4401
        async with websockets.connect(
            local_stack.ws_url, additional_headers={"X-Api-Key": partner["raw"]}
        ) as ws:
            await ws.send('{"type": "ping"}')
            assert (await recv(ws))["type"] == "pong"

    asyncio.run(scenario())


def test_live_status_gives_the_ws_url_with_the_key(local_stack, partner):
    r = httpx.get(local_stack.api_url + "/api/live/status", headers={"X-Api-Key": partner["raw"]})
    assert r.status_code == 200
    assert r.json()["ws_url"] == f"{local_stack.ws_url}?api_key={partner['raw']}"


def test_subscriber_gets_history_then_live_5m_bars_with_the_close(local_stack, partner, publisher):
    async def scenario():
        async with websockets.connect(url(local_stack, partner["raw"])) as ws:
            status, history, timing = await subscribe(ws, SYMBOL, 300)
            assert (status["type"], history["type"], timing["type"]) == ("status", "history", "timing"), (
                status
            )
            assert history["candles"] and all(c["time"] % 300 == 0 for c in history["candles"])
            assert timing["timing"]["timeframe"] == 300
            # when: the collector publishes the five minutes of a 5m bar (forming + close each)
            start = int(time.time()) // 300 * 300 + 3600  # a bar the store knows nothing of

            def drive():
                for i in range(5):
                    t = start + 60 * i
                    publisher.on_bar(SYMBOL, (t, 100.0 + i, 101.0 + i, 99.0, 100.5 + i), False)
                    publisher.on_bar(SYMBOL, (t, 100.0 + i, 102.0 + i, 98.5, 100.7 + i), True)

            await asyncio.to_thread(drive)
            got = await recv_until(ws, lambda m: m["type"] == "bar" and m["closed"])
            bars = [m for m in got if m["type"] == "bar"]
            assert bars[0]["closed"] is False and bars[0]["timeframe"] == 300, (got, publisher.stats)
            assert bars[-1]["candle"] == {
                "time": start,
                "open": 100.0,
                "high": 106.0,
                "low": 98.5,
                "close": 104.7,
            }
            after = await recv(ws)
            assert after["type"] == "timing" and after["timeframe"] == 300

    asyncio.run(scenario())


BAD_FRAMES = [
    ("not json", "invalid_json"),
    ('["subscribe"]', "invalid_message"),
    ('{"symbol": "BTCUSD-OTC"}', "missing_type"),
    ('{"type": "trade"}', "unknown_type"),
    ('{"type": "subscribe", "timeframe": 60}', "missing_symbol"),
    ('{"type": "subscribe", "symbol": "BTCUSD-OTC", "timeframe": 30}', "invalid_timeframe"),
    ('{"type": "subscribe", "symbol": "BTCUSD-OTC", "timeframe": 90}', "invalid_timeframe"),
    ('{"type": "subscribe", "symbol": "BTCUSD-OTC", "timeframe": "5m"}', "invalid_timeframe"),
]


def test_bad_frames_get_an_error_and_the_connection_stays(local_stack, partner, stack_aws):
    from tradowix_bot.server.live_connections import ConnectionStore

    async def scenario():
        async with websockets.connect(url(local_stack, partner["raw"])) as ws:
            for frame, code in BAD_FRAMES:
                await ws.send(frame)
                msg = await recv(ws)
                assert (msg["type"], msg["error"]) == ("error", code), frame
                assert msg["message"]
            await ws.send('{"type": "ping"}')
            assert (await recv(ws))["type"] == "pong"  # still open
        # the restricted key: symbol not allowed, error, connection stays
        async with websockets.connect(url(local_stack, partner["eth_raw"])) as ws:
            await ws.send(json.dumps({"type": "subscribe", "symbol": SYMBOL, "timeframe": 60}))
            msg = await recv(ws)
            assert msg["error"] == "symbol_forbidden" and msg["symbol"] == SYMBOL
            assert [m["type"] for m in await subscribe(ws, "ETHUSD-OTC", 60)] == [
                "status",
                "history",
                "timing",
            ]

    asyncio.run(scenario())
    # nothing half-written: no subscription to anything refused
    subs = ConnectionStore(stack_aws["connections_table"]).subscribers(SYMBOL)
    assert all(s.key_id == partner["key_id"] for s in subs)


def test_frame_over_128kb_closes_with_1009_like_api_gateway(local_stack, partner):
    async def scenario():
        async with websockets.connect(url(local_stack, partner["raw"]), max_size=None) as ws:
            await ws.send(json.dumps({"type": "ping", "pad": "x" * (128 * 1024)}))
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await recv(ws)
            assert closed.value.rcvd.code == 1009
        async with websockets.connect(url(local_stack, partner["raw"])) as ws:  # the gateway still serves
            await ws.send('{"type": "ping"}')
            assert (await recv(ws))["type"] == "pong"

    asyncio.run(scenario())


def test_burst_of_1000_subscribes_is_bounded(local_stack, partner, stack_aws):
    from tradowix_bot.server.live_connections import MAX_SUBSCRIPTIONS

    symbols = ["BTCUSD-OTC", "ETHUSD-OTC", "EURUSD-OTC", "GBPUSD-OTC", "USDJPY-OTC", "XAUUSD-OTC", "AAPL-OTC"]
    frames = [
        json.dumps({"type": "subscribe", "symbol": symbols[i % 7], "timeframe": 3600 * (1 + i // 7)})
        for i in range(1000)
    ]

    async def scenario():
        async with websockets.connect(url(local_stack, partner["raw"]), max_size=None) as ws:
            for frame in frames:  # a burst: all sent before reading anything
                await ws.send(frame)
            counts = {"history": 0, "too_many_subscriptions": 0}
            while sum(counts.values()) < 1000:
                msg = await recv(ws, 30)
                if msg["type"] == "history":
                    counts["history"] += 1
                elif msg["type"] == "error":
                    counts[msg["error"]] = counts.get(msg["error"], 0) + 1
            assert counts == {
                "history": MAX_SUBSCRIPTIONS,
                "too_many_subscriptions": 1000 - MAX_SUBSCRIPTIONS,
            }
            await ws.send('{"type": "ping"}')
            assert (await recv_until(ws, lambda m: m["type"] == "pong"))[-1]["type"] == "pong"

    asyncio.run(scenario())


def test_killed_connections_are_cleaned_up(local_stack, partner, publisher, stack_aws):
    from tradowix_bot.server.live_connections import ConnectionStore

    store = ConnectionStore(stack_aws["connections_table"])

    def subscriber_ids() -> set[str]:
        return {s.connection_id for s in store.subscribers("GBPUSD-OTC")}

    async def scenario():
        # given: a client that dies without a close handshake
        ws = await websockets.connect(url(local_stack, partner["raw"]))
        await subscribe(ws, "GBPUSD-OTC", 60)
        await eventually_async(lambda: len(subscriber_ids()) == 1, 10, "the subscription stored")
        ws.transport.abort()
        # then: the gateway's $disconnect removes it
        await eventually_async(lambda: subscriber_ids() == set(), 10, "the dead connection removed")
        # given: a live client, and a connection that vanished with no $disconnect (as on AWS)
        async with websockets.connect(url(local_stack, partner["raw"])) as live:
            await subscribe(live, "GBPUSD-OTC", 60)
            ghost = store.add_connection("GhostConnId00A=", partner["key_id"])
            store.subscribe(ghost, "GBPUSD-OTC", 60)
            assert len(subscriber_ids()) == 2
            # when: a bar is fanned out
            t = int(time.time()) // 60 * 60 + 7200
            await asyncio.to_thread(publisher.on_bar, "GBPUSD-OTC", (t, 1.27, 1.28, 1.26, 1.275), True)
            # then: 410 removed the ghost only; the live client got its bar
            bar = (await recv_until(live, lambda m: m["type"] == "bar"))[-1]
            assert bar["closed"] is True and bar["candle"]["time"] == t
            assert store.get("GhostConnId00A=") is None and len(subscriber_ids()) == 1
            assert publisher.stats.gone == 1

    asyncio.run(scenario())


def test_a_disabled_key_loses_its_open_connection(local_stack, publisher):
    key_id, raw = local_stack.create_key("ws-soon-disabled")  # works at once (no wait)

    async def scenario():
        async with websockets.connect(url(local_stack, raw)) as ws:
            await subscribe(ws, "AAPL-OTC", 60)
            local_stack.cli("keys", "disable", key_id)
            started = time.monotonic()
            publisher.start()  # revalidates at once, then every 10 s
            msg = await recv(ws, 30)
            assert (msg["type"], msg["error"]) == ("error", "key_disabled")
            with pytest.raises(websockets.ConnectionClosed):
                await recv(ws, 30)
            assert time.monotonic() - started < 30

    try:
        asyncio.run(scenario())
    finally:
        local_stack.cli("keys", "delete", key_id)


def test_a_bot_using_only_chart_api_client_gets_history_then_the_closing_5m_bar(
    local_stack, partner, publisher
):
    import threading

    from tradowix_bot.client.chart_client import AuthenticationError, ChartApiClient

    got: list[dict] = []
    start = int(time.time()) // 300 * 300 + 7200

    def drive():
        for i in range(5):
            publisher.on_bar("XAUUSD-OTC", (start + 60 * i, 2650.0, 2651.0 + i, 2649.0, 2650.5 + i), True)

    def on_msg(msg):
        got.append(msg)
        if msg["type"] == "timing" and len(got) == 3:
            threading.Thread(target=drive).start()  # the collector publishes once we are subscribed

    client = ChartApiClient(local_stack.api_url, partner["raw"])
    stop = threading.Event()
    failures: list[BaseException] = []

    def run():
        try:
            client.subscribe_live_sync(on_msg, symbol="XAUUSD-OTC", timeframe=300, stop=stop)
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            failures.append(exc)

    runner = threading.Thread(target=run)
    runner.start()
    try:
        eventually(
            lambda: any(m["type"] == "bar" and m["closed"] and not m.get("missed") for m in got),
            30,
            "the closing 5m bar at the bot",
        )
    finally:
        stop.set()
        runner.join(10)
    assert not runner.is_alive() and not failures, failures
    assert [m["type"] for m in got[:3]] == ["status", "history", "timing"]
    # (the history's last bar, which the publisher never closed here, comes first, marked missed)
    closing = [m for m in got if m["type"] == "bar" and m["closed"] and not m.get("missed")]
    assert closing and closing[0]["candle"] == {
        "time": start,
        "open": 2650.0,
        "high": 2655.0,
        "low": 2649.0,
        "close": 2654.5,
    }
    with pytest.raises(AuthenticationError):  # a bad key: 4401 locally, reported as one error type
        ChartApiClient(local_stack.api_url, "twk_" + "z" * 43).subscribe_live_sync(
            print, symbol="XAUUSD-OTC", timeframe=300
        )
