"""Given the embedded emulator enforcing template.yaml's IAM (one set of credentials per role,
made at start), when each principal's code runs under its own role, then every call its policy
allows is served, a call it does not allow fails as on AWS (AccessDenied, naming the principal,
the action and the resource) and nothing is written; credentials that are not the stack's are
refused outright."""

from __future__ import annotations

import asyncio
import copy
import json
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import boto3
import pytest
from botocore import UNSIGNED
from botocore.config import Config
from botocore.exceptions import ClientError
from local_emulator import embedded_emulator
from polling import eventually_async
from tradowix_bot.server import aws
from unit_helpers import run_async

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "functions" / "ws"))
EVENTS = Path(__file__).parent / "events"
ACCOUNT = "123456789012"


@pytest.fixture(scope="module")
def stack_iam():
    """The emulator as the local stack runs it (IAM enforced), with the template's resources."""
    with embedded_emulator() as emulator:
        yield emulator


@pytest.fixture
def roles(stack_iam, monkeypatch):
    """`roles.acting_as(name)`: this test's AWS calls with that role's credentials; the functions'
    environment as the template gives it; the denials seen during the test."""
    template = stack_iam.template
    for fn in template.functions().values():
        for k, v in fn.environment.items():
            monkeypatch.setenv(k, v)
    monkeypatch.setenv("WS_MANAGEMENT_ENDPOINT", "http://127.0.0.1:9/live")  # nothing listens: fails fast
    first = len(stack_iam.iam.denials)

    def acting_as(principal: str):
        credentials = stack_iam.iam.credentials[principal]
        return aws.acting_as(credentials.access_key, credentials.secret_key)

    def denials() -> list[str]:
        return [f"{d.principal} {d.action} on {d.resource}" for d in list(stack_iam.iam.denials)[first:]]

    yield SimpleNamespace(acting_as=acting_as, denials=denials, names=stack_iam.names, iam=stack_iam.iam)


def owner_client(stack_iam, service: str):
    return stack_iam.emulator.client(service)


def table_arn(name: str) -> str:
    return f"arn:aws:dynamodb:us-east-1:{ACCOUNT}:table/{name}"


def role_arn(principal: str, role: str) -> str:
    return f"arn:aws:sts::{ACCOUNT}:assumed-role/tradowix-local-{role.lower()}/{principal}"


# -- the mechanism --------------------------------------------------------------------------------
def test_a_call_the_template_does_not_allow_fails_like_aws_and_names_action_and_resource(roles, stack_iam):
    # given the collector's role, which may read the keys table but not write it
    keys_table = roles.names["KeysTable"]
    # when it tries to write a key
    with roles.acting_as("CollectorTaskRole"), pytest.raises(ClientError) as refused:
        aws.client("dynamodb").put_item(TableName=keys_table, Item={"key_id": {"S": "key_forged"}})
    # then DynamoDB's AccessDeniedException names the principal, the action and the table
    error = refused.value.response["Error"]
    assert error["Code"] == "AccessDeniedException"
    assert error["Message"] == (
        f"User: {role_arn('CollectorTaskRole', 'CollectorTaskRole')} is not authorized to perform: "
        f"dynamodb:PutItem on resource: {table_arn(keys_table)} because no identity-based policy "
        "allows the dynamodb:PutItem action"
    )
    assert roles.denials() == [f"CollectorTaskRole dynamodb:PutItem on {table_arn(keys_table)}"]
    # and nothing was written
    assert "Item" not in owner_client(stack_iam, "dynamodb").get_item(
        TableName=keys_table, Key={"key_id": {"S": "key_forged"}}
    )


def test_s3_refuses_a_write_by_a_read_only_role_with_403_access_denied(roles, stack_iam):
    bucket = roles.names["CandlesBucket"]
    key = "candles/1m/BTCUSD-OTC/2026-12-01.json.gz"
    with roles.acting_as("WsFunction"), pytest.raises(ClientError) as refused:
        aws.client("s3").put_object(Bucket=bucket, Key=key, Body=b"forged")
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert refused.value.response["Error"]["Code"] == "AccessDenied"
    assert (
        f"s3:PutObject on resource: arn:aws:s3:::{bucket}/{key}" in refused.value.response["Error"]["Message"]
    )
    listed = owner_client(stack_iam, "s3").list_objects_v2(Bucket=bucket, Prefix=key)
    assert listed.get("KeyCount", 0) == 0


def test_the_emulator_accepts_only_the_stacks_own_credentials(roles, stack_iam):
    """Issue 11 (3): any credentials used to work; now only those the stack's files hold."""
    endpoint = stack_iam.emulator.endpoint_url
    api = roles.iam.credentials["ApiFunction"]

    def client(service, key, secret, **kw):
        return boto3.client(
            service,
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id=key,
            aws_secret_access_key=secret,
            **kw,
        )

    cases = [
        (client("dynamodb", "AKIAIOSFODNN7EXAMPLE", "anything"), "UnrecognizedClientException"),
        (client("dynamodb", api.access_key, "not-the-secret"), "InvalidSignatureException"),
        (
            client("dynamodb", "x", "y", config=Config(signature_version=UNSIGNED)),
            "MissingAuthenticationTokenException",
        ),
    ]
    for dynamodb, code in cases:
        with pytest.raises(ClientError) as refused:
            dynamodb.scan(TableName=roles.names["KeysTable"])
        assert refused.value.response["Error"]["Code"] == code
    s3 = client("s3", "AKIAIOSFODNN7EXAMPLE", "anything")
    with pytest.raises(ClientError) as refused:
        s3.list_objects_v2(Bucket=roles.names["CandlesBucket"])
    assert refused.value.response["Error"]["Code"] == "InvalidAccessKeyId"
    ssm = client("ssm", api.access_key, "not-the-secret")
    with pytest.raises(ClientError) as refused:
        ssm.get_parameter(Name="/tradowix/admin-secret", WithDecryption=True)
    assert refused.value.response["Error"]["Code"] == "InvalidSignatureException"


def test_manage_connections_is_checked_at_the_local_connections_api(roles):
    """The live publisher's and the WebSocket function's posts go through the same check."""
    import datetime as dt

    import httpx
    from tradowix_bot.server.live_poster import ConnectionsSigner
    from tradowix_local.ws_gateway import WsGateway

    gateway = WsGateway(roles.iam.template.websocket_api(), {}, iam=roles.iam)
    url = "http://127.0.0.1:8766/live/@connections/c0nn3ct10nId%3D"

    def post(principal: str | None, method: str = "POST") -> httpx.Response:
        headers = {}
        if principal:
            c = roles.iam.credentials[principal]
            creds = SimpleNamespace(access_key=c.access_key, secret_key=c.secret_key, token=None)
            headers = ConnectionsSigner("us-east-1").headers(
                method, url, b"{}", creds, dt.datetime.now(dt.UTC)
            )

        async def send():
            transport = httpx.ASGITransport(app=gateway)
            async with httpx.AsyncClient(transport=transport) as http:
                return await http.request(method, httpx.URL(url), content=b"{}", headers=headers)

        return run_async(send())

    # the collector (live publisher) and the WebSocket function may post: the unknown id is 410
    assert post("CollectorTaskRole").status_code == 410
    assert post("WsFunction").status_code == 410
    # the partner API's role may not, and says which action on which connection
    refused = post("ApiFunction")
    assert refused.status_code == 403
    assert refused.headers["x-amzn-errortype"] == "AccessDeniedException"
    api_id = roles.iam.template.physical_name("WsApi")
    assert (
        f"execute-api:ManageConnections on resource: arn:aws:execute-api:us-east-1:{ACCOUNT}:"
        f"{api_id}/live/POST/@connections/c0nn3ct10nId=" in refused.json()["message"]
    )
    # nobody may read connection details (GET) they do not need
    assert post("WsFunction", "GET").status_code == 403
    # and an unsigned request is refused
    assert post(None).status_code == 403


# -- the known misses, fixed ----------------------------------------------------------------------
def test_the_live_publishers_key_recheck_only_reads_the_keys_table(roles, stack_iam):
    """It called UpdateItem (last use) about once a minute per key, refused and swallowed."""
    from tradowix_bot.server.keys import KeyRegistry
    from tradowix_bot.server.live_connections import ConnectionStore
    from tradowix_bot.server.services import Services, live_settings

    # given a key and a connection made with it
    record, _ = KeyRegistry(roles.names["KeysTable"]).create("partner")
    ConnectionStore(roles.names["ConnectionsTable"]).add_connection("conn-a", record.key_id)
    # when the publisher, built as the collector builds it and running as the collector, re-checks keys
    with roles.acting_as("CollectorTaskRole"):
        publisher = Services(live_settings, metrics_service="collector").publisher()
        verdicts = publisher.guard.check()
        publisher.poster.close()
    # then the connection stays (the key is fine) and the collector made no call its role refuses
    assert verdicts is not None and not verdicts.close and not verdicts.end
    assert roles.denials() == []


def test_a_session_connect_before_any_gate_sign_in_is_refused_with_401(roles, stack_iam, monkeypatch):
    """The WebSocket function created the cookie secret (PutItem, not in its role): 5xx, not 401."""
    from live_ws import context, handler
    from tradowix_bot.server.keys import KeyRegistry

    KeyRegistry(roles.names["KeysTable"]).create("partner")  # keys exist: no open mode
    monkeypatch.setattr(
        "tradowix_bot.server.live_poster.ConnectionPoster", lambda endpoint: SimpleNamespace()
    )
    context.reset()
    event = json.loads((EVENTS / "ws_connect.json").read_text())
    event["queryStringParameters"] = {"session": "forged.token.value"}
    with roles.acting_as("WsFunction"):
        answer = handler.handler(copy.deepcopy(event), None)
    context.reset()
    assert answer["statusCode"] == 401
    assert json.loads(answer["body"])["error"] == "invalid_session"
    assert roles.denials() == []
    secret = owner_client(stack_iam, "dynamodb").get_item(
        TableName=roles.names["StateTable"], Key={"pk": {"S": "settings"}, "sk": {"S": "cookie-secret"}}
    )
    assert "Item" not in secret  # nothing was created by the read-only function


def test_only_the_admin_function_manages_keys_and_writes_the_session_token(roles):
    from tradowix_bot.server.admin import SessionTokenStore
    from tradowix_bot.server.keys import KeyRegistry

    keys = KeyRegistry(roles.names["KeysTable"])
    token = SessionTokenStore("/tradowix/session-token")
    # given the partner API's role: it may not create keys or write the owner's token
    with roles.acting_as("ApiFunction"):
        with pytest.raises(ClientError) as refused:
            keys.create("minted by the public API")
        assert "dynamodb:PutItem on resource: " + table_arn(roles.names["KeysTable"]) in str(refused.value)
        with pytest.raises(ClientError) as refused:
            token.replace("stolen-or-planted")
        assert (
            "ssm:PutParameter on resource: arn:aws:ssm:us-east-1:123456789012:parameter/tradowix/session-token"
            in str(refused.value)
        )
    # when the admin function's role does the same, it works
    with roles.acting_as("AdminFunction"):
        record, _ = keys.create("made by the owner")
        assert token.replace("owner-token")["set"] is True
        keys.delete(record.key_id)
    # and the template routes the admin API to the admin function only
    routes = {r.path: r.function for r in roles.iam.template.http_routes()}
    assert routes["/api/admin/{proxy+}"] == "AdminFunction"
    assert routes["/api/{proxy+}"] == "ApiFunction"


# -- every principal's everyday work is allowed -----------------------------------------------------
def test_the_partner_api_role_serves_every_partner_endpoint(roles):
    from partner_api import context
    from tradowix_bot.server.keys import KeyRegistry
    from tradowix_bot.server.store import CandleStore
    from unit_helpers import get, invoke, synthetic_bars

    now = int(time.time()) // 60 * 60
    CandleStore(roles.names["CandlesBucket"]).write("BTCUSD-OTC", synthetic_bars(now - 3600, 60))
    _, raw = KeyRegistry(roles.names["KeysTable"]).create("partner")
    context.reset()
    with roles.acting_as("ApiFunction"):
        statuses = [
            get(path, query, {"X-Api-Key": raw}).status
            for path, query in [
                ("/api/symbols", {}),
                ("/api/candles", {"symbol": "BTCUSD-OTC", "limit": 5}),
                ("/api/candles", {"symbol": "BTCUSD-OTC", "timeframe": 300}),
                ("/api/timing", {"symbol": "BTCUSD-OTC", "timeframe": 300}),
                ("/api/live/status", {}),
            ]
        ]
        verify = invoke("verify_post.json", body=json.dumps({"api_key": raw}))  # gate sign-in: cookie secret
        cookie = verify.cookies[0].split(";")[0]
        statuses += [verify.status, invoke("symbols_get_cookie.json", cookies=[cookie]).status]
    context.reset()
    assert statuses == [200] * 7
    assert roles.denials() == []


def test_the_admin_role_serves_every_admin_endpoint(roles, stack_iam):
    from fastapi.testclient import TestClient
    from partner_api import context
    from partner_api.admin_app import app
    from tradowix_bot.server.admin import hash_secret

    owner_client(stack_iam, "ssm").put_parameter(
        Name="/tradowix/admin-secret",
        Value=hash_secret("owner-secret", iterations=1000),
        Type="SecureString",
        Overwrite=True,
    )
    context.reset()
    with roles.acting_as("AdminFunction"), TestClient(app, base_url="https://testserver") as http:
        login = http.post("/api/admin/login", json={"secret": "owner-secret"})
        csrf = {"X-CSRF-Token": login.json()["csrf_token"]}
        created = http.post("/api/admin/keys", json={"name": "p1"}, headers=csrf)
        key_id = created.json()["record"]["key_id"]
        statuses = [
            login.status_code,
            created.status_code,
            http.get("/api/admin/keys").status_code,
            http.post(f"/api/admin/keys/{key_id}/disable", headers=csrf).status_code,
            http.post(f"/api/admin/keys/{key_id}/enable", headers=csrf).status_code,
            http.put(
                f"/api/admin/keys/{key_id}/symbols", json={"symbols": ["BTCUSD-OTC"]}, headers=csrf
            ).status_code,
            http.put("/api/admin/session-token", json={"token": "tok-123"}, headers=csrf).status_code,
            http.get("/api/admin/session-token").status_code,
            http.get("/api/admin/upstream").status_code,
            http.delete(f"/api/admin/keys/{key_id}", headers=csrf).status_code,
        ]
        wrong = http.post("/api/admin/login", json={"secret": "wrong"}).status_code  # throttle counter
    context.reset()
    assert statuses == [200, 201, 200, 200, 200, 200, 200, 200, 200, 200]
    assert wrong == 401
    assert roles.denials() == []


def test_the_websocket_role_serves_connect_subscribe_ping_and_disconnect(roles, monkeypatch):
    from live_ws import context, handler
    from tradowix_bot.server.keys import KeyRegistry
    from tradowix_bot.server.store import CandleStore
    from unit_helpers import synthetic_bars

    now = int(time.time()) // 60 * 60
    CandleStore(roles.names["CandlesBucket"]).write("EURUSD-OTC", synthetic_bars(now - 3600, 60))
    _, raw = KeyRegistry(roles.names["KeysTable"]).create("partner")
    sent = []
    poster = SimpleNamespace(post=lambda cid, msg: sent.append(msg) or "ok", delete=lambda cid: "ok")
    monkeypatch.setattr("tradowix_bot.server.live_poster.ConnectionPoster", lambda endpoint: poster)
    context.reset()
    base = json.loads((EVENTS / "ws_connect.json").read_text())

    def event(route: str, body: dict | None = None) -> dict:
        ev = copy.deepcopy(base)
        ev["requestContext"]["routeKey"] = route
        ev["requestContext"]["connectionId"] = "ws-role-conn"
        if route == "$connect":
            ev["queryStringParameters"] = {"api_key": raw}
        if body is not None:
            ev["body"] = json.dumps(body)
        return ev

    with roles.acting_as("WsFunction"):
        answers = [
            handler.handler(event("$connect"), None),
            handler.handler(
                event("subscribe", {"type": "subscribe", "symbol": "EURUSD-OTC", "timeframe": 60}), None
            ),
            handler.handler(event("ping", {"type": "ping"}), None),
            handler.handler(
                event("unsubscribe", {"type": "unsubscribe", "symbol": "EURUSD-OTC", "timeframe": 60}), None
            ),
            handler.handler(event("$disconnect"), None),
        ]
    context.reset()
    assert [a["statusCode"] for a in answers] == [200] * 5
    assert [m["type"] for m in sent] == ["status", "history", "timing", "pong", "status"]
    assert roles.denials() == []


def test_the_collector_role_builds_bars_and_runs_the_fan_out(roles):
    from tradowix_bot.collector import Clock, Collector
    from tradowix_bot.collector.synthetic import SyntheticSource
    from tradowix_bot.server.live_connections import ConnectionStore
    from tradowix_bot.server.state import StateStore
    from tradowix_bot.server.store import CandleStore

    ConnectionStore(roles.names["ConnectionsTable"]).add_connection("fan-out-conn", None)

    class Publisher:  # the fan-out's storage side (subscribers, key checks) under the role
        def __init__(self):
            from tradowix_bot.server.services import Services, live_settings

            self.inner = Services(live_settings, metrics_service="collector").publisher()

        def on_bar(self, symbol, bar, closed):  # its storage calls, in this thread
            self.inner.refresh_subscribers()
            self.inner.revalidate()

    async def run():
        clock = Clock(30.0)
        with roles.acting_as("CollectorTaskRole"):
            collector = Collector(
                SyntheticSource(clock),
                CandleStore(roles.names["CandlesBucket"]),
                StateStore(roles.names["StateTable"]),
                symbols=["ETHUSD-OTC"],
                clock=clock,
                backfill_days=10 / 1440,
                lease_seconds=3.0,
                forming_interval=0.2,
                status_interval=0.5,
                trim=True,
                sinks=[Publisher()],
            )
            stop = asyncio.Event()
            task = asyncio.create_task(collector.run(stop))
            store = CandleStore(roles.names["CandlesBucket"])
            # until the backfill and a forming round are written (a bound, not a timing)
            await eventually_async(
                lambda: store.read("ETHUSD-OTC"), within=60, what="bars the collector stored"
            )
            await eventually_async(
                lambda: StateStore(roles.names["StateTable"]).upstream_status(), within=60, what="its status"
            )
            stop.set()
            await asyncio.wait_for(task, 20)

    run_async(run())
    assert StateStore(roles.names["StateTable"]).upstream_status()["stopped"] is True  # its final record
    assert CandleStore(roles.names["CandlesBucket"]).read("ETHUSD-OTC")
    assert roles.denials() == []
