"""Issue 11 items 10 and 12, attacked as an outsider would, through the API Gateway event the
deployed API receives: login CSRF on POST /api/auth/verify, loosely written integers, 405s
without `Allow`, and an OpenAPI document that must say what the server really does."""

from __future__ import annotations

import json

import pytest
from unit_helpers import get, invoke

SITE = "https://abcdef1234.execute-api.us-east-1.amazonaws.com"  # the host in the event fixtures
EVIL = "https://evil.example"


@pytest.fixture
def attacker_key(api, admin):
    """The attacker's own valid key: what a login CSRF would sign the victim in with."""
    return admin.create("attacker")[1]


def verify(body: str | None, **headers):
    return invoke("verify_post.json", body=body, drop_body=body is None, headers=headers)


def test_cross_site_text_plain_post_sets_no_cookie(attacker_key):
    # given: a page on another site that auto-submits a text/plain form holding JSON
    body = json.dumps({"api_key": attacker_key})
    # when: the victim's browser sends it (Origin and Sec-Fetch-Site are set by the browser)
    answer = verify(body, **{"Content-Type": "text/plain", "Origin": EVIL, "Sec-Fetch-Site": "cross-site"})
    # then: refused, and the victim's browser gets no session cookie
    assert answer.status == 403 and answer.json()["error"] == "cross_site_request"
    assert answer.cookies == [] and "set-cookie" not in answer.headers


def test_cross_site_form_post_sets_no_cookie(attacker_key):
    answer = verify(
        f"api_key={attacker_key}",
        **{"Content-Type": "application/x-www-form-urlencoded", "Origin": EVIL},
    )
    assert answer.status == 403 and answer.cookies == []


def test_foreign_origin_is_refused_even_with_a_json_body(attacker_key):
    answer = verify(json.dumps({"api_key": attacker_key}), Origin=EVIL)
    assert answer.status == 403 and answer.cookies == []


def test_same_site_but_other_origin_is_refused(attacker_key):
    answer = verify(json.dumps({"api_key": attacker_key}), **{"Sec-Fetch-Site": "same-site"})
    assert answer.status == 403 and answer.cookies == []


def test_a_non_json_body_is_415_and_sets_no_cookie(attacker_key):
    # a same-origin request (no Origin at all) whose body is not declared as JSON
    answer = verify(json.dumps({"api_key": attacker_key}), **{"Content-Type": "text/plain"})
    assert answer.status == 415 and answer.json()["error"] == "unsupported_media_type"
    assert answer.cookies == []


def test_the_gate_page_still_signs_in(attacker_key):
    # given: the gate page's own fetch: same origin, JSON
    answer = verify(
        json.dumps({"api_key": attacker_key}),
        **{"Content-Type": "application/json", "Origin": SITE, "Sec-Fetch-Site": "same-origin"},
    )
    # then: signed in, with the HttpOnly cookie
    assert answer.status == 200 and answer.json()["name"] == "attacker"
    assert answer.cookies and "HttpOnly" in answer.cookies[0]


def test_header_key_api_clients_keep_working(attacker_key):
    # the README's curl call (JSON body and header, no Origin) and a bare header-key POST
    curl = verify(json.dumps({"api_key": attacker_key}), **{"X-Api-Key": attacker_key})
    bare = invoke("verify_post.json", drop_body=True, headers={"X-Api-Key": attacker_key, "Content-Type": ""})
    assert curl.status == 200 and bare.status == 200
    assert bare.json()["key_id"] == curl.json()["key_id"]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("limit", " 5"),
        ("limit", "+3"),
        ("limit", "3_0"),
        ("timeframe", "60.0"),
        ("timeframe", "6e1"),
        ("start", "1710028800.0"),
        ("page_size", "\u0665"),  # an Arabic-Indic 5: a digit to str.isdigit, not to us
    ],
)
def test_loosely_written_integers_are_refused(api, field, value):
    # when: a query integer is written any way but plain ASCII digits
    answer = get("/api/candles", {"symbol": "BTCUSD-OTC", field: value})
    # then: 400 naming the field; nothing is guessed
    assert answer.status == 400, answer.body
    assert answer.json()["error"] == f"invalid_{field}"
    assert "digits only" in answer.json()["message"]


@pytest.mark.parametrize(
    ("path", "method", "allowed"),
    [
        ("/api/candles", "DELETE", {"GET"}),
        ("/api/auth/verify", "GET", {"POST"}),
        ("/api/docs", "PUT", {"GET"}),
    ],
)
def test_405_names_the_allowed_methods(api, path, method, allowed):
    answer = invoke("candles_get.json", path=path, method=method, query={})
    assert answer.status == 405 and answer.json()["error"] == "method_not_allowed"
    assert allowed <= {m.strip() for m in answer.headers["allow"].split(",")}


def openapi() -> dict:
    return get("/api/openapi.json").json()


def test_openapi_documents_no_422_and_every_status_the_server_sends(api):
    spec = openapi()
    statuses = {
        (path, method): set(op["responses"])
        for path, ops in spec["paths"].items()
        for method, op in ops.items()
    }
    assert all("422" not in s for s in statuses.values())
    assert {"200", "304", "400", "401", "403", "404", "429", "503"} <= statuses[("/api/candles", "get")]
    assert {"200", "400", "401", "403", "415", "429", "503"} <= statuses[("/api/auth/verify", "post")]
    error = spec["paths"]["/api/candles"]["get"]["responses"]["400"]["content"]["application/json"]["schema"]
    assert error["required"] == ["error", "message"]
    assert "HTTPValidationError" not in json.dumps(spec)


def test_openapi_parameters_carry_the_bounds_the_server_enforces(api):
    params = {p["name"]: p for p in openapi()["paths"]["/api/candles"]["get"]["parameters"]}
    assert params["symbol"]["required"] is True
    assert params["symbol"]["schema"]["maxLength"] == 40
    assert params["timeframe"]["schema"] == {
        "type": "integer",
        "minimum": 60,
        "maximum": 604800,
        "multipleOf": 60,
        "default": 60,
    }
    assert params["limit"]["schema"]["minimum"] == 1 and params["limit"]["schema"]["maximum"] == 50000
    assert params["start"]["schema"]["maximum"] < 10**11  # milliseconds are outside the schema
    # and a 41-character symbol, outside the schema, is refused by the server too
    assert get("/api/candles", {"symbol": "A" * 41}).status == 400


def test_openapi_declares_how_to_authenticate(api):
    spec = openapi()
    schemes = spec["components"]["securitySchemes"]
    assert schemes["ApiKeyHeader"] == {
        "type": "apiKey",
        "in": "header",
        "name": "X-Api-Key",
        "description": schemes["ApiKeyHeader"]["description"],
    }
    assert {"ApiKeyHeader": []} in spec["paths"]["/api/candles"]["get"]["security"]
    assert spec["paths"]["/api/docs"]["get"]["security"] == []
