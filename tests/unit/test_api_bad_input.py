"""Given the partner API on in-process moto, called with the API Gateway event the deployed API
receives, when any bad input of the contract arrives (timeframe, limit, range, symbol, key,
cookie, route), then the answer is a clear 4xx with an {"error", "message"} body, and nothing is
written (bucket and tables unchanged)."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tradowix_bot.candles import validate_symbol
from tradowix_bot.errors import BadRequest
from tradowix_bot.server.store import CANDLE_PREFIX, object_key
from unit_helpers import get, invoke, storage_fingerprint


@pytest.fixture
def partner(api, admin):
    """A partner key that has already been used once (its last-use bookkeeping is done), and
    a first verify (the cookie secret exists): from here on a refused request writes nothing."""
    from tradowix_bot.server import aws

    _, raw = admin.create("partner")
    assert get("/api/candles", {"symbol": "BTCUSD-OTC", "limit": 1}, {"X-Api-Key": raw}).status == 200
    assert invoke("verify_post.json", body=json.dumps({"api_key": raw})).status == 200
    s3_calls: list[str] = []

    def record(params, model, **_):
        s3_calls.append(f"{model.name} {params.get('Key') or params.get('Prefix')}")

    s3 = aws.client("s3")
    s3.meta.events.register("before-parameter-build.s3", record)
    before = storage_fingerprint(api)
    yield raw, s3_calls
    s3.meta.events.unregister("before-parameter-build.s3", record)
    assert storage_fingerprint(api) == before, "a refused request changed stored data"


def assert_error(answer, status: int, code: str) -> dict:
    assert answer.status == status, answer.body
    body = answer.json()
    assert set(body) == {"error", "message"}
    assert body["error"] == code
    assert isinstance(body["message"], str) and len(body["message"]) > 10
    assert answer.headers["content-type"].startswith("application/json")
    return body


@pytest.mark.parametrize("timeframe", ["abc", "30", "90", "60.5"])
def test_bad_timeframe_is_400(partner, timeframe):
    raw, _ = partner
    answer = get("/api/candles", {"symbol": "BTCUSD-OTC", "timeframe": timeframe}, {"X-Api-Key": raw})
    body = assert_error(answer, 400, "invalid_timeframe")
    assert "timeframe" in body["message"]


@pytest.mark.parametrize("path", ["/api/candles", "/api/timing"])
def test_timeframe_of_90_is_400_on_timing_too(partner, path):
    raw, _ = partner
    answer = get(path, {"symbol": "BTCUSD-OTC", "timeframe": 90}, {"X-Api-Key": raw})
    assert "multiple of 60" in assert_error(answer, 400, "invalid_timeframe")["message"]


@pytest.mark.parametrize("limit", ["-1", "0", str(10**9), "abc"])
def test_bad_limit_is_400(partner, limit):
    raw, _ = partner
    answer = get("/api/candles", {"symbol": "BTCUSD-OTC", "limit": limit}, {"X-Api-Key": raw})
    assert "limit" in assert_error(answer, 400, "invalid_limit")["message"]


def test_start_not_before_end_is_an_empty_range(partner):
    # A query the published schema allows is never a 400 (each bound is valid on its own): the
    # range is empty, and the answer says so.
    raw, _ = partner
    answer = get("/api/candles", {"symbol": "BTCUSD-OTC", "start": 200, "end": 100}, {"X-Api-Key": raw})
    assert answer.status == 200
    assert answer.json()["candles"] == [] and answer.json()["has_more"] is False


@pytest.mark.parametrize("path", ["/api/candles", "/api/timing"])
def test_missing_symbol_is_400(partner, path):
    raw, _ = partner
    answer = get(path, {"timeframe": 60}, {"X-Api-Key": raw})
    assert "symbol" in assert_error(answer, 400, "missing_symbol")["message"]


def test_unknown_symbol_is_404(partner):
    raw, s3_calls = partner
    answer = get("/api/candles", {"symbol": "NOPE-OTC"}, {"X-Api-Key": raw})
    assert "NOPE-OTC" in assert_error(answer, 404, "no_data")["message"]
    # it looked only under its own prefix
    assert s3_calls and all(c.split(" ", 1)[1].startswith(f"{CANDLE_PREFIX}NOPE-OTC/") for c in s3_calls)


HOSTILE_QUERIES = {
    "slash": "symbol=BTCUSD-OTC/2024-03-10",
    "dotdot": "symbol=..",
    "dotdot-path": "symbol=../catalog/symbols",
    "encoded-slash": "symbol=BTCUSD-OTC%2F..%2FEURUSD-OTC",
    "literal-%2F": "symbol=BTCUSD%252FOTC",
    "space": "symbol=BTC%20USD",
    "leading-space": "symbol=%20BTCUSD-OTC",
    "plus-space": "symbol=BTCUSD+OTC",
    "200-chars": "symbol=" + "A" * 200,
    "201-chars": "symbol=" + "A" * 201,
    "trailing-dot": "symbol=BTCUSD.",
    "nul": "symbol=BTC%00USD",
    "backslash": "symbol=BTC%5CUSD",
}


@pytest.mark.parametrize("raw_query", HOSTILE_QUERIES.values(), ids=HOSTILE_QUERIES.keys())
def test_symbol_that_could_address_another_object_is_400_before_any_storage_call(partner, raw_query):
    raw, s3_calls = partner
    answer = invoke("candles_get.json", raw_query=raw_query, headers={"X-Api-Key": raw})
    assert_error(answer, 400, "invalid_symbol")
    assert s3_calls == []  # no S3 request was even built


def test_hostile_symbols_are_400_on_timing_too(partner):
    raw, s3_calls = partner
    for raw_query in HOSTILE_QUERIES.values():
        answer = invoke(
            "candles_get.json", path="/api/timing", raw_query=raw_query, headers={"X-Api-Key": raw}
        )
        assert_error(answer, 400, "invalid_symbol")
    assert s3_calls == []


@settings(max_examples=500, deadline=None)
@given(st.text(max_size=250))
def test_any_accepted_symbol_stays_inside_its_own_prefix(symbol):
    # given any string; when it is accepted as a symbol; then its objects live under
    # candles/1m/<symbol>/ and the name cannot climb out of, or into, another prefix
    try:
        validate_symbol(symbol)
    except BadRequest:
        return
    key = object_key(symbol, "2024-03-10")
    assert key == f"{CANDLE_PREFIX}{symbol}/2024-03-10.json.gz"
    assert "/" not in symbol and ".." not in symbol and symbol.strip() == symbol
    assert symbol.isascii() and len(symbol) <= 40 and symbol not in (".", "")


def test_key_with_wrong_prefix_is_401(partner):
    raw, _ = partner
    answer = get("/api/candles", {"symbol": "BTCUSD-OTC"}, {"X-Api-Key": "sk_" + raw[4:]})
    assert "twk_" in assert_error(answer, 401, "invalid_key")["message"]


def test_unknown_key_is_401(partner):
    raw, _ = partner
    answer = get(
        "/api/candles", {"symbol": "BTCUSD-OTC"}, {"X-Api-Key": raw[:-1] + ("A" if raw[-1] != "A" else "B")}
    )
    assert_error(answer, 401, "invalid_key")


def test_missing_key_is_401(partner):
    answer = get("/api/candles", {"symbol": "BTCUSD-OTC"})
    assert_error(answer, 401, "missing_key")


def test_key_of_a_disabled_key_is_401(api, admin):
    from partner_api import context

    record, raw = admin.create("partner")
    admin.create("other")
    assert get("/api/candles", {"symbol": "BTCUSD-OTC", "limit": 1}, {"X-Api-Key": raw}).status == 200
    admin.set_enabled(record.key_id, False)
    context.services.keys().invalidate()  # a cold container (the warm bound is tested in test_api_keys)
    before = storage_fingerprint(api)
    answer = get("/api/candles", {"symbol": "BTCUSD-OTC"}, {"X-Api-Key": raw})
    assert "disabled" in assert_error(answer, 401, "key_disabled")["message"]
    verify = invoke("verify_post.json", body=json.dumps({"api_key": raw}))
    assert_error(verify, 401, "key_disabled")
    assert verify.cookies == []
    assert storage_fingerprint(api) == before


BAD_BODIES = ["not json", "{'api_key': 'twk_x'}", '{"api_key": ', "[1, 2]", '"twk_x"', '{"api_key": 5}']


def test_verify_body_that_is_not_a_json_object_is_400_and_sets_no_cookie(partner):
    raw, _ = partner
    for body in [*BAD_BODIES, b"\xff\xfe\x00garbage"]:
        # even with a valid key in the header, a broken body is refused
        answer = invoke("verify_post.json", body=body, headers={"X-Api-Key": raw})
        assert_error(answer, 400, "invalid_json")
        assert answer.cookies == []


def test_tampered_cookie_is_401(partner):
    raw, _ = partner
    cookie = invoke("verify_post.json", body=json.dumps({"api_key": raw})).cookies[0].split(";")[0]
    name, token = cookie.split("=", 1)
    payload, rest = token.split(".", 1)
    forged = payload[:-2] + ("AA" if payload[-2:] != "AA" else "BB") + "." + rest
    for bad in (f"{name}={forged}", f"{name}={token}x", f"{name}=", f"{name}=twk_{'a' * 43}"):
        answer = invoke("symbols_get_cookie.json", cookies=[bad])
        assert answer.status == 401, bad
        assert answer.json()["error"] in ("invalid_session", "missing_key")


def test_cookie_signed_for_another_key_id_is_401(partner):
    # a token with a valid signature but an id that does not exist (e.g. a deleted key)
    from partner_api import context

    token = context.services.signer().issue("key_000000000000")
    answer = invoke("symbols_get_cookie.json", cookies=[f"twk_session={token}"])
    assert_error(answer, 401, "invalid_key")


def test_expired_cookie_is_401(partner, monkeypatch):
    import time

    from itsdangerous.timed import TimestampSigner

    raw, _ = partner
    # given: a cookie issued longer ago than COOKIE_MAX_AGE
    from partner_api import context

    issued_at = int(time.time()) - context.services.settings().cookie_max_age - 5
    monkeypatch.setattr(TimestampSigner, "get_timestamp", lambda self: issued_at)
    cookie = invoke("verify_post.json", body=json.dumps({"api_key": raw})).cookies[0].split(";")[0]
    monkeypatch.undo()
    # when it is used, then it is refused with a sentence telling the user what to do
    answer = invoke("symbols_get_cookie.json", cookies=[cookie])
    assert "expired" in assert_error(answer, 401, "session_expired")["message"]


def test_unknown_endpoint_and_method_use_the_error_body(partner):
    assert_error(get("/api/nothing-here"), 404, "no_such_endpoint")
    assert_error(invoke("verify_post.json", method="GET"), 405, "method_not_allowed")
