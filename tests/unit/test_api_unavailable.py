"""Given the partner API, when S3 or DynamoDB cannot be reached, then the partner gets 503 with
the error body (naming what is down), never a 500, and /api/docs still answers."""

from __future__ import annotations

import json
import socket

import pytest
from tradowix_bot.server.keys import KeyRegistry
from unit_helpers import get, invoke


def closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"  # nothing listens there once the socket is closed


def fresh_clients() -> None:
    from partner_api import context
    from tradowix_bot.server import aws

    aws.reset()
    context.reset()


@pytest.fixture
def nothing_reachable(monkeypatch):
    """Every AWS endpoint points at a closed port on 127.0.0.1 (no emulator at all)."""
    from tradowix_local.template import Template

    for k, v in Template().functions()["ApiFunction"].environment.items():
        monkeypatch.setenv(k, v)
    monkeypatch.setenv("AWS_ENDPOINT_URL", closed_port_url())
    fresh_clients()
    yield
    fresh_clients()


def assert_unavailable(answer, what: str) -> None:
    assert answer.status == 503, answer.body
    body = answer.json()
    assert set(body) == {"error", "message"} and body["error"] == "unavailable"
    assert what in body["message"]
    assert answer.headers.get("retry-after")


@pytest.mark.parametrize(
    ("path", "query"),
    [
        ("/api/candles", {"symbol": "BTCUSD-OTC"}),
        ("/api/symbols", {}),
        ("/api/timing", {"symbol": "BTCUSD-OTC"}),
        ("/api/live/status", {}),
    ],
)
def test_nothing_reachable_is_503_on_every_protected_endpoint(nothing_reachable, path, query):
    assert_unavailable(get(path, query), "DynamoDB")


def test_verify_when_nothing_is_reachable_is_503(nothing_reachable):
    answer = invoke("verify_post.json", body=json.dumps({"api_key": "twk_" + "a" * 43}))
    assert_unavailable(answer, "DynamoDB")
    assert answer.cookies == []


def test_docs_still_answer_when_storage_is_down(nothing_reachable):
    assert get("/api/docs").status == 200


def test_s3_down_with_keys_up_is_503_naming_the_candle_store(api, admin, monkeypatch):
    # given: a valid key; DynamoDB reachable, S3 not
    _, raw = admin.create("partner")
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", closed_port_url())
    fresh_clients()
    answer = get("/api/candles", {"symbol": "BTCUSD-OTC"}, {"X-Api-Key": raw})
    assert_unavailable(answer, "candle store (S3)")
    assert_unavailable(get("/api/symbols", headers={"X-Api-Key": raw}), "S3")


def test_dynamodb_down_on_a_warm_function_is_503(api, admin, monkeypatch):
    # given: a warm function whose key snapshot has expired while DynamoDB went away
    _, raw = admin.create("partner")
    assert get("/api/candles", {"symbol": "BTCUSD-OTC", "limit": 1}, {"X-Api-Key": raw}).status == 200
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", closed_port_url())
    fresh_clients()
    answer = get("/api/candles", {"symbol": "BTCUSD-OTC"}, {"X-Api-Key": raw})
    assert_unavailable(answer, "key store (DynamoDB)")


def test_admin_operations_report_unavailable_not_a_traceback(nothing_reachable):
    from tradowix_bot.errors import Unavailable

    registry = KeyRegistry("tradowix-keys")
    with pytest.raises(Unavailable):
        registry.create("partner")
    with pytest.raises(Unavailable):
        registry.list()
