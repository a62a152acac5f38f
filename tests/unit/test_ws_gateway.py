"""Given the local WebSocket gateway built from template.yaml's WebSocket API, when clients
connect and send frames, then the handler receives API Gateway's events, and @connections
answers as API Gateway does (410, 413)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading

import pytest
import uvicorn
import websockets
from polling import eventually, eventually_async
from starlette.testclient import TestClient
from starlette.websockets import WebSocketDisconnect
from tradowix_local.template import Template
from tradowix_local.ws_gateway import WsGateway


class FakeFunction:
    """Records events; refuses $connect with `connect_status`."""

    def __init__(self, connect_status: int = 200):
        self.events: list[dict] = []
        self.connect_status = connect_status

    def invoke(self, event):
        self.events.append(event)
        if event["requestContext"]["routeKey"] == "$connect":
            return {"statusCode": self.connect_status}
        return {"statusCode": 200}

    def routes(self) -> list[str]:
        return [e["requestContext"]["routeKey"] for e in self.events]


def gateway(function: FakeFunction, **kwargs) -> WsGateway:
    api = Template().websocket_api()
    return WsGateway(api, {name: function for name in set(api.routes.values())}, **kwargs)


def test_template_routes_and_events():
    api = Template().websocket_api()
    assert api.route_selection_expression == "$request.body.type" and api.stage == "live"
    assert set(api.routes) == {"$connect", "$disconnect", "subscribe", "unsubscribe", "ping", "$default"}
    fn = FakeFunction()
    with TestClient(gateway(fn)) as client:
        with client.websocket_connect("/?api_key=twk_abc", headers={"X-Api-Key": "twk_h"}) as ws:
            ws.send_text('{"type": "subscribe", "symbol": "BTCUSD-OTC"}')
            ws.send_text("not json")
            ws.send_text('{"type": "$connect"}')  # a reserved key never routes from a body
            ws.send_text('{"type": "ping"}')
            eventually(lambda: "ping" in fn.routes(), 10, "the last message handled", interval=0.02)
        eventually(lambda: "$disconnect" in fn.routes(), 10, "$disconnect handled", interval=0.02)
    assert fn.routes() == ["$connect", "subscribe", "$default", "$default", "ping", "$disconnect"]
    connect, message = fn.events[0], fn.events[1]
    ctx = connect["requestContext"]
    assert ctx["eventType"] == "CONNECT" and ctx["stage"] == "live" and ctx["connectionId"]
    assert connect["queryStringParameters"] == {"api_key": "twk_abc"}
    assert connect["headers"]["x-api-key"] == "twk_h"
    assert message["requestContext"]["eventType"] == "MESSAGE"
    assert message["requestContext"]["connectionId"] == ctx["connectionId"]
    assert json.loads(message["body"])["symbol"] == "BTCUSD-OTC"
    assert fn.events[-1]["requestContext"]["eventType"] == "DISCONNECT"


def test_refused_connect_closes_with_4401():
    with TestClient(gateway(FakeFunction(connect_status=401))) as client:
        with client.websocket_connect("/") as ws, pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_text()
        assert closed.value.code == 4401


def test_connections_api_post_get_delete_and_gone():
    fn = FakeFunction()
    gw = gateway(fn)
    with TestClient(gw) as client:
        with client.websocket_connect("/") as ws:
            (conn_id,) = gw.connections
            assert client.post(f"/live/@connections/{conn_id}", content=b'{"type":"pong"}').status_code == 200
            assert ws.receive_json() == {"type": "pong"}
            got = client.get(f"/@connections/{conn_id}").json()
            assert set(got) == {"ConnectedAt", "Identity", "LastActiveAt"}
            big = client.post(f"/live/@connections/{conn_id}", content=b"x" * (128 * 1024 + 1))
            assert (big.status_code, big.headers["x-amzn-errortype"]) == (413, "PayloadTooLargeException")
            assert client.delete(f"/live/@connections/{conn_id}").status_code == 204
            with pytest.raises(WebSocketDisconnect):
                ws.receive_text()
        gone = client.post(f"/live/@connections/{conn_id}", content=b"{}")
        assert (gone.status_code, gone.headers["x-amzn-errortype"]) == (410, "GoneException")
        assert client.get("/live/@connections/NoSuchConn0000=").status_code == 410
        assert client.delete("/live/@connections/NoSuchConn0000=").status_code == 410


def test_idle_connections_are_closed_like_api_gateway():
    with TestClient(gateway(FakeFunction(), idle_seconds=0.3)) as client:
        with client.websocket_connect("/") as ws, pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_text()
        assert closed.value.code == 1001


def test_message_over_128kb_closes_with_1009():
    with TestClient(gateway(FakeFunction())) as client:
        with client.websocket_connect("/") as ws:
            ws.send_text("x" * (128 * 1024 + 1))
            with pytest.raises(WebSocketDisconnect) as closed:
                ws.receive_text()
        assert closed.value.code == 1009


class BusyFunction(FakeFunction):
    """A handler that takes its time: every message waits until the test releases it."""

    def __init__(self):
        super().__init__()
        self.release = threading.Event()

    def invoke(self, event):
        if event["requestContext"]["eventType"] == "MESSAGE":
            self.release.wait(30)
        return super().invoke(event)


@contextlib.contextmanager
def served(app):
    """The gateway on a real uvicorn server on 127.0.0.1, configured as the local stack runs it."""
    config = uvicorn.Config(
        app, host="127.0.0.1", port=0, log_level="warning", lifespan="off", ws_ping_interval=None
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    eventually(lambda: server.started, within=30, what="the gateway listening")
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"ws://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


def test_pings_are_answered_while_a_burst_of_messages_waits_for_the_handler():
    # given: a gateway whose handler is still busy with the first of a burst of 50 messages
    fn = BusyFunction()
    with served(gateway(fn)) as url:

        async def scenario():
            async with websockets.connect(url, ping_interval=None) as ws:
                for _ in range(50):
                    await ws.send('{"type": "ping"}')
                # when: the client sends its keepalive ping (websockets does every 20 s)
                pong = await ws.ping()
                # then: the gateway answers it, as API Gateway does whatever its integrations do
                # (before: no pong until every queued message was handled: 1011 on a busy machine)
                await asyncio.wait_for(pong, 20)
                assert fn.routes().count("ping") == 0  # the handler had not got past the first
                # and every message is still handed to the handler, in order, once it is free
                fn.release.set()
                await eventually_async(lambda: fn.routes().count("ping") == 50, 30, "50 messages handled")

        asyncio.run(scenario())
    assert fn.routes()[0] == "$connect" and fn.routes()[-1] == "$disconnect"
