"""Given per-key rate limits (issue 13 item 3) and an injected clock, when keyed requests arrive
through the API Gateway event the deployed API receives, then: X-RateLimit-* headers on every keyed answer, 429
`rate_limited` with Retry-After, the owner's per-key setting (domain, admin API, CLI) and the
deployment default, one exact count across concurrent Lambdas, and subscribe floods on the
WebSocket."""

from __future__ import annotations

import json

import boto3
import pytest
from tradowix_bot.errors import BadRequest
from tradowix_bot.server.ratelimit import RateLimiter
from unit_helpers import T0, get, invoke

CANDLES = {"symbol": "BTCUSD-OTC", "limit": 2}
MINUTE_START = 1_800_000_000 - 1_800_000_000 % 60


class Clock:
    def __init__(self, now: float):
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock():
    return Clock(MINUTE_START + 15.0)  # 15 s into a minute: 45 s until it resets


@pytest.fixture
def limiter(api, clock, monkeypatch):
    """The API's rate limiter, as a warm Lambda container holds it, on an injected clock."""
    from partner_api import context

    limiter = RateLimiter(api["StateTable"], default_per_minute=600, clock=clock)
    monkeypatch.setattr(context.services, "rate_limiter", lambda: limiter)
    return limiter


def with_key(raw: str, path: str = "/api/candles", query: dict | None = None, **headers):
    return get(path, CANDLES if query is None else query, headers={"X-Api-Key": raw, **headers})


def test_every_keyed_answer_carries_the_rate_limit_headers(limiter, admin):
    # given: a key restricted to BTCUSD-OTC and another for every symbol, on the default limit
    _, raw = admin.create("partner", ["BTCUSD-OTC"])
    _, everything = admin.create("all symbols")
    first = with_key(raw)
    # when: answers of every kind: 200, 304, 400, 403, 404
    answers = [
        first,
        with_key(raw, **{"If-None-Match": first.headers["etag"]}),
        with_key(raw, query={"symbol": "BTCUSD-OTC", "timeframe": 90}),
        with_key(raw, query={"symbol": "EURUSD-OTC"}),
        with_key(raw, "/api/timing", {"symbol": "EURUSD-OTC"}),
        with_key(raw, "/api/symbols", {}),
    ]
    not_found = with_key(everything, query={"symbol": "NOSUCH-OTC"})
    # then: each carries the limit, what is left (one less each time) and when it resets
    assert [a.status for a in answers] == [200, 304, 400, 403, 403, 200]
    assert [a.headers["x-ratelimit-limit"] for a in answers] == ["600"] * 6
    assert [int(a.headers["x-ratelimit-remaining"]) for a in answers] == list(range(599, 593, -1))
    assert {a.headers["x-ratelimit-reset"] for a in answers} == {"45"}
    assert not_found.status == 404 and not_found.headers["x-ratelimit-remaining"] == "599"


def test_over_the_limit_is_429_rate_limited_with_retry_after(limiter, admin, clock):
    # given: a key the owner limited to 3 requests per minute
    _, raw = admin.create("small partner", rate_limit=3)
    assert [with_key(raw).status for _ in range(3)] == [200, 200, 200]
    # when: a 4th request in the same minute
    refused = with_key(raw)
    # then: 429 with the contract's body, Retry-After and the headers
    assert refused.status == 429
    assert refused.json()["error"] == "rate_limited" and set(refused.json()) == {"error", "message"}
    assert refused.headers["retry-after"] == "45" and refused.headers["x-ratelimit-remaining"] == "0"
    assert refused.headers["x-ratelimit-limit"] == "3"
    # and when the minute is over, the key works again
    clock.now += 45
    again = with_key(raw)
    assert again.status == 200 and again.headers["x-ratelimit-remaining"] == "2"


def test_a_key_over_its_limit_does_not_use_up_another_keys_limit(limiter, admin):
    _, small = admin.create("small", rate_limit=1)
    _, other = admin.create("other", rate_limit=1)
    assert [with_key(small).status for _ in range(3)] == [200, 429, 429]
    assert with_key(other).status == 200


def test_counts_are_exact_across_concurrent_lambdas(api, admin, clock):
    # given: three warm containers (each its own limiter) serving one key limited to 10/min
    record, _ = admin.create("busy partner", rate_limit=10)
    containers = [RateLimiter(api["StateTable"], clock=clock) for _ in range(3)]
    # when: 30 requests arrive spread over the three
    decisions = [containers[i % 3].hit(record.key_id, record.rate_limit) for i in range(30)]
    # then: exactly 10 are allowed in all, and each answer's remaining count is exact
    assert sum(d.allowed for d in decisions) == 10
    assert [d.remaining for d in decisions[:10]] == list(range(9, -1, -1))


def test_a_flood_past_the_limit_costs_no_more_writes(api, admin, clock):
    from tradowix_bot.server import aws

    record, _ = admin.create("flooder", rate_limit=2)
    limiter = RateLimiter(api["StateTable"], clock=clock)
    writes = []
    aws.resource("dynamodb").meta.client.meta.events.register(
        "before-call.dynamodb.UpdateItem", lambda **kw: writes.append(1)
    )
    decisions = [limiter.hit(record.key_id, record.rate_limit) for _ in range(50)]
    assert sum(d.allowed for d in decisions) == 2
    assert len(writes) == 3  # two allowed, the one that found the limit, then memory


def test_the_deployment_default_applies_to_keys_without_their_own(api, admin, monkeypatch, clock):
    from partner_api import context

    monkeypatch.setenv("RATE_LIMIT_PER_MINUTE", "2")
    context.reset()
    _, raw = admin.create("default partner")
    assert [with_key(raw).status for _ in range(3)] == [200, 200, 429]
    assert with_key(raw).headers["x-ratelimit-limit"] == "2"


def test_open_mode_answers_carry_no_rate_limit(api):
    answer = get("/api/candles", CANDLES)
    assert answer.status == 200 and "x-ratelimit-limit" not in answer.headers


def test_an_unreachable_counter_does_not_take_the_api_down(limiter, admin, monkeypatch):
    from botocore.exceptions import EndpointConnectionError

    _, raw = admin.create("partner")

    def unreachable(*args, **kwargs):
        raise EndpointConnectionError(endpoint_url="http://127.0.0.1:9")

    monkeypatch.setattr(
        type(limiter), "_table", property(lambda self: type("T", (), {"update_item": unreachable})())
    )
    answer = with_key(raw)
    assert answer.status == 200 and "x-ratelimit-limit" not in answer.headers


@pytest.mark.parametrize("bad", [0, -5, 10**7, True, 2.5])
def test_bad_rate_limits_are_refused_and_change_nothing(admin, bad):
    record, _ = admin.create("partner", rate_limit=5)
    with pytest.raises(BadRequest) as info:
        admin.set_rate_limit(record.key_id, bad)
    assert info.value.code == "invalid_rate_limit"
    assert admin.get(record.key_id).rate_limit == 5
    with pytest.raises(BadRequest):
        admin.create("another", rate_limit=bad)
    assert [r.name for r in admin.list()] == ["partner"]


def test_the_owner_sets_a_keys_limit_with_the_cli(api, admin, capsys):
    from tradowix_bot.cli.__main__ import main

    record, _ = admin.create("partner")
    assert main(["keys", "rate-limit", record.key_id, "--per-minute", "42"]) == 0
    assert admin.get(record.key_id).rate_limit == 42 and "42/min" in capsys.readouterr().out
    assert main(["keys", "rate-limit", record.key_id, "--default"]) == 0
    assert admin.get(record.key_id).rate_limit is None
    assert main(["keys", "rate-limit", record.key_id, "--per-minute", "0"]) == 1
    assert "rate_limit must be" in capsys.readouterr().err
    assert main(["keys", "create", "--name", "capped", "--rate-limit", "7"]) == 0
    assert [r.rate_limit for r in admin.list() if r.name == "capped"] == [7]


def test_the_owner_sets_a_keys_limit_in_the_admin_api(api, admin):
    # given: an admin session (the panel's login) and a key
    boto3.client("ssm").put_parameter(
        Name="/tradowix/admin-secret", Value="correct horse battery staple", Type="SecureString"
    )
    login = invoke(
        "verify_post.json",
        path="/api/admin/login",
        body=json.dumps({"secret": "correct horse battery staple"}),
    )
    assert login.status == 200, login.body
    session = {
        "cookies": [login.cookies[0].split(";")[0]],
        "headers": {"X-CSRF-Token": login.json()["csrf_token"]},
    }
    record, _ = admin.create("partner")
    # when: the owner sets 30/min, then a bad value
    ok = invoke(
        "verify_post.json",
        path=f"/api/admin/keys/{record.key_id}/rate-limit",
        method="PUT",
        body=json.dumps({"rate_limit": 30}),
        **session,
    )
    bad = invoke(
        "verify_post.json",
        path=f"/api/admin/keys/{record.key_id}/rate-limit",
        method="PUT",
        body=json.dumps({"rate_limit": 0}),
        **session,
    )
    # then: the record says 30, the bad value is a 400 that changed nothing
    assert ok.status == 200 and ok.json()["record"]["rate_limit"] == 30
    assert bad.status == 400 and bad.json()["error"] == "invalid_rate_limit"
    assert admin.get(record.key_id).rate_limit == 30
    listed = invoke("candles_get.json", path="/api/admin/keys", query={}, **session).json()["keys"]
    assert [k["rate_limit"] for k in listed] == [30]


def test_a_subscribe_flood_on_the_websocket_is_refused_with_retry_after(api, admin, clock):
    from tradowix_bot.server.keys import KeyRegistry
    from tradowix_bot.server.live_connections import ConnectionStore
    from tradowix_bot.server.live_socket import LiveSocket
    from tradowix_bot.server.market import MarketData
    from tradowix_bot.server.state import StateStore
    from tradowix_bot.server.store import CandleStore

    class Recorder:
        def __init__(self):
            self.sent = []

        def post(self, connection_id, msg):
            self.sent.append(msg)

        def delete(self, connection_id):
            self.sent.append("closed")

    # given: a connection of a key limited to 3 requests per minute
    _, raw = admin.create("ws partner", rate_limit=3)
    poster = Recorder()
    socket = LiveSocket(
        KeyRegistry(api["KeysTable"]),
        ConnectionStore(api["ConnectionsTable"]),
        MarketData(
            CandleStore(api["CandlesBucket"]), StateStore(api["StateTable"]), clock=lambda: T0 + 86400
        ),
        poster,
        rate_limiter=RateLimiter(api["StateTable"], clock=clock),
    )
    socket.connect("conn-1", raw)
    # when: it sends 5 subscribes in the same minute
    for timeframe in (60, 120, 180, 300, 600):
        socket.handle(
            "conn-1", json.dumps({"type": "subscribe", "symbol": "BTCUSD-OTC", "timeframe": timeframe})
        )
    # then: 3 are served (status, history, timing each), 2 get rate_limited with retry_after,
    # and the connection stays open
    errors = [m for m in poster.sent if m != "closed" and m["type"] == "error"]
    assert [m["type"] for m in poster.sent[:9]] == ["status", "history", "timing"] * 3
    assert [(e["error"], e["retry_after"], e["timeframe"]) for e in errors] == [
        ("rate_limited", 45, 300),
        ("rate_limited", 45, 600),
    ]
    assert "closed" not in poster.sent


def test_api_docs_describe_the_limits_the_server_applies(limiter, admin):
    # given: what /api/docs promises, and what a keyed answer carries
    docs = get("/api/docs").json()
    _, raw = admin.create("partner")
    answer = with_key(raw)
    # then: the same headers, the deployment's default, and the 429 in the error table
    assert {h.lower() for h in docs["rate_limits"]["headers"]} <= set(answer.headers)
    assert docs["rate_limits"]["default_per_minute"] == 600
    assert any(row["status"] == 429 for row in docs["errors"]["codes"])
