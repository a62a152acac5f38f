"""Given the partner API on in-process moto, when partners and browsers call it, then they get
what they notice over HTTP: the verify cookie, conditional requests (ETag, 304), compression,
the candles answer shape, and /api/docs generated from the OpenAPI document."""

from __future__ import annotations

import gzip
import json

import pytest
from unit_helpers import T0, get, gunzip_if_needed, invoke


@pytest.fixture
def key(api, admin):
    _, raw = admin.create("browser", ["BTCUSD-OTC"])
    return raw


def test_verify_sets_an_httponly_signed_cookie_that_authenticates_candles(key):
    # when: the gate page posts the key (the spec's curl: header and body)
    answer = invoke("verify_post.json", body=json.dumps({"api_key": key}), headers={"X-Api-Key": key})
    # then: ok, the key's id and symbols, and a cookie
    body = answer.json()
    assert answer.status == 200 and body["ok"] is True and body["key_id"].startswith("key_")
    assert body["all_symbols"] is False and body["symbols"] == ["BTCUSD-OTC"]
    [set_cookie] = answer.cookies
    attributes = [a.strip().lower() for a in set_cookie.split(";")]
    name, token = set_cookie.split(";")[0].split("=", 1)
    assert name == "twk_session"
    assert "httponly" in attributes and "samesite=lax" in attributes and "path=/" in attributes
    assert "secure" in attributes  # the event says x-forwarded-proto: https
    assert any(a.startswith("max-age=") for a in attributes)
    # the cookie holds a signed token, never the key
    assert key not in set_cookie and key[4:] not in set_cookie and "twk_" not in token
    # and the cookie alone authenticates /api/candles and /api/symbols
    candles = invoke(
        "symbols_get_cookie.json",
        path="/api/candles",
        query={"symbol": "BTCUSD-OTC", "limit": 2},
        cookies=["theme=dark", f"{name}={token}"],
    )
    assert candles.status == 200 and candles.json()["count"] == 2
    forbidden = invoke(
        "symbols_get_cookie.json",
        path="/api/candles",
        query={"symbol": "EURUSD-OTC"},
        cookies=[f"{name}={token}"],
    )
    assert forbidden.status == 403  # the cookie carries the key's restrictions
    assert get("/api/candles", {"symbol": "BTCUSD-OTC"}).status == 401  # and without it: refused


def test_verify_over_plain_http_sets_a_cookie_without_secure(key):
    answer = invoke(
        "verify_post.json", body=json.dumps({"api_key": key}), headers={"x-forwarded-proto": "http"}
    )
    assert "secure" not in [a.strip().lower() for a in answer.cookies[0].split(";")]


def test_verify_with_a_bad_key_sets_no_cookie(key):
    answer = invoke("verify_post.json", body=json.dumps({"api_key": "twk_" + "z" * 43}))
    assert answer.status == 401 and answer.cookies == []


def test_candles_answer_has_the_contract_shape(api):
    answer = get("/api/candles", {"symbol": "BTCUSD-OTC", "timeframe": 300, "limit": 3})
    body = answer.json()
    assert answer.status == 200
    assert {"symbol", "timeframe", "base_timeframe", "count", "candles", "timing", "last_closed"} <= set(body)
    assert body["symbol"] == "BTCUSD-OTC" and body["timeframe"] == 300 and body["base_timeframe"] == 60
    assert body["count"] == 3 == len(body["candles"])
    assert list(body["candles"][0]) == ["time", "open", "high", "low", "close"]
    times = [c["time"] for c in body["candles"]]
    assert times == sorted(set(times)) and all(t % 300 == 0 for t in times)
    assert times[-1] == T0 + 2 * 86400 - 300  # the last 5m bucket of the stored 2 days
    assert body["last_closed"] is True
    assert set(body["timing"]) == {
        "symbol",
        "timeframe",
        "server_time",
        "bar_open",
        "bar_close",
        "elapsed",
        "seconds_left",
        "progress",
    }


def test_no_limit_returns_every_stored_bar(api):
    body = get("/api/candles", {"symbol": "BTCUSD-OTC"}, headers={"accept-encoding": "gzip"})
    assert json.loads(gunzip_if_needed(body))["count"] == 2 * 1440


def test_start_and_end_select_a_range(api):
    body = get("/api/candles", {"symbol": "BTCUSD-OTC", "start": T0 + 600, "end": T0 + 900}).json()
    assert [c["time"] for c in body["candles"]] == [T0 + 600 + 60 * i for i in range(5)]


def test_etag_then_if_none_match_is_304_without_a_body(api):
    # given: a first answer with an ETag
    first = get("/api/candles", {"symbol": "BTCUSD-OTC", "limit": 10})
    etag = first.headers["etag"]
    # when: the same request is repeated with If-None-Match (a moment later)
    again = get("/api/candles", {"symbol": "BTCUSD-OTC", "limit": 10}, {"If-None-Match": etag})
    # then: 304, nothing to download
    assert again.status == 304 and again.body == b""
    assert again.headers["etag"] == etag
    # and a different question, or changed data, gets a full answer
    other = get("/api/candles", {"symbol": "BTCUSD-OTC", "limit": 11}, {"If-None-Match": etag})
    assert other.status == 200 and other.headers["etag"] != etag


def test_etag_changes_when_a_new_bar_is_stored(api):
    import time

    from tradowix_bot.server.store import CandleStore

    # given: a warm function that answered once
    first = get("/api/candles", {"symbol": "BTCUSD-OTC", "limit": 10})
    # when: the collector stores a closed bar in today's object (as it does every minute)
    minute = int(time.time()) // 60 * 60 - 60
    CandleStore(api["CandlesBucket"]).write("BTCUSD-OTC", [(minute, 1.0, 2.0, 0.5, 1.5)])
    again = get(
        "/api/candles", {"symbol": "BTCUSD-OTC", "limit": 10}, {"If-None-Match": first.headers["etag"]}
    )
    # then: the next request sees it (not a 304 of the old answer)
    assert again.status == 200 and again.json()["candles"][-1]["time"] == minute
    assert again.json()["available_to"] == minute


def test_large_answers_are_gzip_compressed_for_clients_that_accept_it(api):
    answer = get("/api/candles", {"symbol": "BTCUSD-OTC"}, {"Accept-Encoding": "gzip, deflate"})
    assert answer.headers["content-encoding"] == "gzip"
    assert answer.raw["isBase64Encoded"] is True  # API Gateway gets binary as base64
    data = gzip.decompress(answer.body)
    assert len(answer.body) < len(data) / 3
    assert json.loads(data)["count"] == 2 * 1440
    # small answers and clients that do not ask stay plain
    assert (
        "content-encoding"
        not in get("/api/candles", {"symbol": "BTCUSD-OTC", "limit": 1}, {"Accept-Encoding": "gzip"}).headers
    )
    assert "content-encoding" not in get("/api/candles", {"symbol": "BTCUSD-OTC"}).headers


def test_docs_list_every_route_of_the_openapi_document(api):
    from fastapi.routing import APIRoute
    from partner_api import udf_routes
    from partner_api.app import app
    from partner_api.routes import router

    docs = get("/api/docs").json()
    openapi = get("/api/openapi.json").json()
    listed = {(e["method"], e["path"]) for e in docs["endpoints"]}
    in_openapi = {(m.upper(), p) for p, ops in openapi["paths"].items() for m in ops}
    declared = [*router.routes, *udf_routes.router.routes, *app.routes]  # partner, UDF, the app's own
    in_app = {(m, r.path) for r in declared if isinstance(r, APIRoute) for m in r.methods}
    assert listed == in_openapi == in_app
    assert {
        ("POST", "/api/auth/verify"),
        ("GET", "/api/symbols"),
        ("GET", "/api/candles"),
        ("GET", "/api/timing"),
        ("GET", "/api/live/status"),
        ("GET", "/api/docs"),
    } <= listed
    candles = next(e for e in docs["endpoints"] if e["path"] == "/api/candles")
    assert {p["name"] for p in candles["params"]} >= {"symbol", "timeframe", "limit", "start", "end"}
    assert candles["auth"] == "key"
    assert {e["status"] for e in docs["errors"]["codes"]} == {400, 401, 403, 404, 405, 415, 429, 503}
    assert 14400 in docs["timeframes"]["common"] and "epoch" in docs["timeframes"]["rule"]


def test_docs_follow_a_route_added_later(api):
    # a new route appears in /api/docs with no hand-kept list to update
    from fastapi import APIRouter
    from partner_api.app import app

    extra = APIRouter()

    @extra.get("/api/extra-test-route", summary="added by a test", openapi_extra={"x-auth": "key"})
    def _extra():
        return {}

    app.include_router(extra)
    app.openapi_schema = None
    try:
        docs = get("/api/docs").json()
        assert ("GET", "/api/extra-test-route") in {(e["method"], e["path"]) for e in docs["endpoints"]}
    finally:
        app.router.routes = [
            r for r in app.router.routes if getattr(r, "path", "") != "/api/extra-test-route"
        ]
        app.openapi_schema = None


def test_docs_need_no_key(api, admin):
    admin.create("someone")
    assert get("/api/docs").status == 200
