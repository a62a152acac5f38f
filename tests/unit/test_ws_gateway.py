"""Given the local WebSocket gateway built from template.yaml's WebSocket API, when clients
connect and send frames, then the handler receives API Gateway's events, and @connections
answers as API Gateway does (410, 413)."""

from __future__ import annotations

import json
import time

import pytest
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


def wait_until(check, timeout: float = 5.0) -> None:
    deadline = time.time() + timeout
    while not check() and time.time() < deadline:
        time.sleep(0.02)


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
            wait_until(lambda: "ping" in fn.routes())
        wait_until(lambda: "$disconnect" in fn.routes())
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


def test_refused_connect_closes_with_4401_and_the_answers_code():
    fn = FakeFunction(connect_status=401)
    fn.invoke = lambda event: {"statusCode": 401, "body": '{"error": "key_disabled", "message": "disabled"}'}
    with TestClient(gateway(fn)) as client:
        with client.websocket_connect("/") as ws, pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_text()
        assert (closed.value.code, closed.value.reason) == (4401, "key_disabled")


ACCESS_KEY, SECRET_KEY = "AKIDLOCALTEST", "local-test-secret"


def credentials(access_key: str) -> str | None:
    return SECRET_KEY if access_key == ACCESS_KEY else None


def signed(method: str, path: str, body: bytes = b"", secret: str = SECRET_KEY, when=None) -> dict:
    """Headers of a request signed by botocore's own SigV4 signer (what boto3 and the AWS CLI send)."""
    from unittest import mock

    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    request = AWSRequest(method=method, url=f"http://testserver{path}", data=body)
    signer = SigV4Auth(Credentials(ACCESS_KEY, secret), "execute-api", "us-east-1")
    if when is None:
        signer.add_auth(request)
    else:  # botocore's signer reads the time from this function
        with mock.patch("botocore.auth.get_current_datetime", return_value=when.replace(tzinfo=None)):
            signer.add_auth(request)
    return dict(request.headers.items())


def parse_get_connection(response) -> dict:
    """The answer as boto3's apigatewaymanagementapi client parses it (its real model and parser)."""
    import botocore.session
    from botocore.parsers import create_parser

    model = botocore.session.get_session().get_service_model("apigatewaymanagementapi")
    operation = model.operation_model("GetConnection")
    return create_parser("rest-json").parse(
        {"status_code": response.status_code, "headers": dict(response.headers), "body": response.content},
        operation.output_shape,
    )


def test_connections_api_post_get_delete_and_gone(monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    fn = FakeFunction()
    gw = gateway(fn, credentials=credentials)

    def call(method, path, body=b""):
        return client.request(method, path, content=body, headers=signed(method, path, body))

    with TestClient(gw) as client:
        with client.websocket_connect("/", headers={"User-Agent": "partner-bot/2"}) as ws:
            (conn_id,) = gw.connections
            path = f"/live/@connections/{conn_id}"
            assert call("POST", path, b'{"type":"pong"}').status_code == 200
            assert ws.receive_json() == {"type": "pong"}
            got = parse_get_connection(call("GET", path))
            assert got["Identity"] == {"SourceIp": "testclient", "UserAgent": "partner-bot/2"}
            assert got["ConnectedAt"] <= got["LastActiveAt"] and got["ConnectedAt"].tzinfo is not None
            big = call("POST", path, b"x" * (128 * 1024 + 1))
            assert (big.status_code, big.headers["x-amzn-errortype"]) == (413, "PayloadTooLargeException")
            assert call("DELETE", path).status_code == 204
            with pytest.raises(WebSocketDisconnect):
                ws.receive_text()
        gone = call("POST", path, b"{}")
        assert (gone.status_code, gone.headers["x-amzn-errortype"]) == (410, "GoneException")
        assert call("GET", "/live/@connections/NoSuchConn0000=").status_code == 410
        assert call("DELETE", "/live/@connections/NoSuchConn0000=").status_code == 410


def test_connections_api_refuses_what_api_gateway_refuses(monkeypatch):
    # given a live connection
    import datetime as dt

    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    gw = gateway(FakeFunction(), credentials=credentials)
    with TestClient(gw) as client:
        with client.websocket_connect("/") as ws:
            (conn_id,) = gw.connections
            path = f"/live/@connections/{conn_id}"
            stale = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=10)
            answers = {
                # when a request is unsigned, signed with a wrong secret, signed too long ago,
                # or sent to another stage (or none)
                "unsigned": client.post(path, content=b'{"x":1}'),
                "wrong secret": client.post(
                    path, content=b'{"x":1}', headers=signed("POST", path, b'{"x":1}', "nope")
                ),
                "stale date": client.post(
                    path, content=b'{"x":1}', headers=signed("POST", path, b'{"x":1}', when=stale)
                ),
                "other stage": client.post(
                    f"/prod/@connections/{conn_id}",
                    content=b'{"x":1}',
                    headers=signed("POST", f"/prod/@connections/{conn_id}", b'{"x":1}'),
                ),
                "no stage": client.post(
                    f"/@connections/{conn_id}",
                    content=b'{"x":1}',
                    headers=signed("POST", f"/@connections/{conn_id}", b'{"x":1}'),
                ),
                "body changed after signing": client.post(
                    path, content=b'{"x":2}', headers=signed("POST", path, b'{"x":1}')
                ),
            }
            # then each gets API Gateway's 403 with its error type, and nothing reached the client
            assert {name: r.status_code for name, r in answers.items()} == dict.fromkeys(answers, 403)
            kinds = {name: r.headers["x-amzn-errortype"] for name, r in answers.items()}
            assert kinds["unsigned"] == "MissingAuthenticationTokenException"
            assert answers["unsigned"].json() == {"message": "Missing Authentication Token"}
            assert kinds["wrong secret"] == kinds["stale date"] == "InvalidSignatureException"
            assert kinds["body changed after signing"] == "InvalidSignatureException"
            assert answers["other stage"].json() == answers["no stage"].json() == {"message": "Forbidden"}
            assert (
                client.post(path, content=b'{"ok":1}', headers=signed("POST", path, b'{"ok":1}')).status_code
                == 200
            )
            assert ws.receive_json() == {"ok": 1}  # the first message it got is the signed one


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
