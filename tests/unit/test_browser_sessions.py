"""Given the partner API on in-process moto (events through the Lambda handler), then a partner's
browser can sign out (the server clears the HttpOnly cookie), the owner's browser gets a chart
session from the admin panel that reads every symbol without a key (and nobody else can get
one), /api/docs is a page for browsers and JSON for everyone else, and a session token that is
not a cookie value is refused before anything is stored."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import boto3
import pytest
from unit_helpers import get, invoke

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "functions" / "ws"))

ADMIN_SECRET = "owner-secret-for-tests"


def cookie_parts(set_cookie: str) -> tuple[str, str, list[str]]:
    first, *attributes = [a.strip() for a in set_cookie.split(";")]
    name, value = first.split("=", 1)
    return name, value, [a.lower() for a in attributes]


@pytest.fixture
def partner(api, admin):
    """A restricted partner key exists (so the API is not in open mode): (key_id, raw)."""
    record, raw = admin.create("partner", ["BTCUSD-OTC"])
    return record.key_id, raw


@pytest.fixture
def owner(api):
    """An admin session of the owner: (cookie for twk_admin, CSRF token)."""
    boto3.client("ssm").put_parameter(
        Name=os.environ["ADMIN_SECRET_PARAMETER"], Value=ADMIN_SECRET, Type="SecureString", Overwrite=True
    )
    answer = invoke(
        "verify_post.json", path="/api/admin/login", body=json.dumps({"secret": ADMIN_SECRET}), cookies=[]
    )
    assert answer.status == 200, answer.body
    name, value, _ = cookie_parts(answer.cookies[0])
    return f"{name}={value}", answer.json()["csrf_token"]


def open_owner_chart(owner, headers: dict | None = None):
    cookie, csrf = owner
    return invoke(
        "verify_post.json",
        path="/api/admin/chart-session",
        body="",
        cookies=[cookie],
        headers={"X-CSRF-Token": csrf, **(headers or {})},
    )


def test_sign_out_clears_the_httponly_session_cookie(partner):
    _, raw = partner
    signed_in = invoke("verify_post.json", body=json.dumps({"api_key": raw}), headers={"X-Api-Key": raw})
    name, token, _ = cookie_parts(signed_in.cookies[0])
    # when the browser posts to the sign-out endpoint
    answer = invoke("verify_post.json", path="/api/auth/logout", body="", cookies=[f"{name}={token}"])
    # then the cookie is replaced by an expired, empty one with the same path and flags
    assert answer.status == 200 and answer.json() == {"ok": True}
    [cleared] = answer.cookies
    cname, value, attributes = cookie_parts(cleared)
    assert (cname, value.strip('"')) == ("twk_session", "")
    assert "max-age=0" in attributes and "path=/" in attributes and "httponly" in attributes
    assert "secure" in attributes  # the event came over https
    assert answer.headers["cache-control"] == "no-store"


def test_owner_chart_session_reads_every_symbol_without_a_key(api, admin, partner, owner):
    keys_before = [r.public() for r in admin.list()]
    # when the owner opens the chart from the admin panel
    answer = open_owner_chart(owner)
    # then the browser gets an HttpOnly session cookie, holding neither a key nor the secret
    assert answer.status == 200, answer.body
    name, token, attributes = cookie_parts(answer.cookies[0])
    assert name == "twk_session" and "httponly" in attributes and "path=/" in attributes
    assert "twk_" not in token and ADMIN_SECRET not in token
    session = [f"{name}={token}"]
    # and it reads every symbol, although the only key is restricted to BTCUSD-OTC
    for symbol in ("BTCUSD-OTC", "EURUSD-OTC"):
        candles = invoke(
            "symbols_get_cookie.json",
            path="/api/candles",
            query={"symbol": symbol, "limit": 2},
            cookies=session,
        )
        assert candles.status == 200, (symbol, candles.body)
    who = invoke("verify_post.json", body="{}", cookies=session).json()
    assert who["name"] == "Owner (admin panel)" and who["all_symbols"] is True
    # and no key was made for it
    assert [r.public() for r in admin.list()] == keys_before


def test_owner_chart_session_needs_the_admin_session_and_its_csrf_token(api, partner, owner):
    cookie, _ = owner
    _, raw = partner
    no_session = invoke("verify_post.json", path="/api/admin/chart-session", body="", cookies=[])
    no_csrf = invoke("verify_post.json", path="/api/admin/chart-session", body="", cookies=[cookie])
    partner_key = open_owner_chart(owner, {"X-Api-Key": raw})
    assert (no_session.status, no_session.json()["error"]) == (401, "admin_login_required")
    assert (no_csrf.status, no_csrf.json()["error"]) == (403, "csrf_token_invalid")
    assert (partner_key.status, partner_key.json()["error"]) == (403, "partner_key_refused")
    assert not no_session.cookies and not no_csrf.cookies and not partner_key.cookies


def test_owner_chart_session_ends_when_its_time_is_up(api, partner):
    from partner_api import context
    from tradowix_bot.server.keys import owner_session_id

    # given an owner session whose time is up (minted the way the endpoint mints it)
    expired = context.services.signer().issue(owner_session_id(int(time.time()) - 1))
    answer = invoke(
        "symbols_get_cookie.json",
        path="/api/candles",
        query={"symbol": "EURUSD-OTC"},
        cookies=[f"twk_session={expired}"],
    )
    assert answer.status == 401 and answer.json()["error"] == "session_expired"


def test_owner_chart_session_is_admitted_by_the_websocket(api, partner, owner, monkeypatch):
    from tradowix_local.template import Template

    for k, v in Template().functions()["WsFunction"].environment.items():
        monkeypatch.setenv(k, v)
    from live_ws import context, handler  # its settings are validated at import, as at Lambda's init

    context.reset()
    try:
        _, token, _ = cookie_parts(open_owner_chart(owner).cookies[0])
        event = json.loads((Path(__file__).parent / "events" / "ws_connect.json").read_text())
        # when the owner's chart connects with the session token /api/live/status gave it
        event["queryStringParameters"] = {"session": token}
        assert handler.handler(event, None)["statusCode"] == 200
        # and a forged "owner" id that the server never signed is refused
        event["queryStringParameters"] = {"session": token[:-4] + "AAAA"}
        assert handler.handler(event, None)["statusCode"] == 401
    finally:
        context.reset()


@pytest.mark.parametrize(
    "accept, html",
    [
        ("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", True),  # Chromium
        ("text/html", True),
        (None, False),  # curl -H 'Accept:' / clients that say nothing
        ("*/*", False),  # curl, httpx
        ("application/json", False),
        ("application/json, text/html", False),  # a tie: JSON
        ("text/html;q=0.4, application/json;q=0.9", False),
        ("text/*, application/json;q=0.5", True),
        ("text/html;q=0, */*", False),
    ],
)
def test_docs_are_a_page_for_browsers_and_json_for_clients(api, accept, html):
    headers = {"Accept": accept} if accept else {}
    answer = get("/api/docs", headers=headers)
    assert answer.status == 200 and "accept" in answer.headers["vary"].lower()
    if html:
        assert answer.headers["content-type"] == "text/html; charset=utf-8"
        text = answer.body.decode()
        assert "<h1>Tradowix chart API" in text and "/api/candles" in text and "<script" not in text
        assert "script-src 'self'" in answer.headers["content-security-policy"]
    else:
        assert answer.headers["content-type"].startswith("application/json")
        assert answer.json()["endpoints"]


def test_docs_page_shows_catalog_text_as_text():
    from partner_api.pages import docs_page

    page = docs_page(
        {"name": "<b>x</b>", "version": "1", "notes": {"a": '<img src=x onerror="alert(1)">'}}
    ).body
    assert b"<img" not in page and b"&lt;img src=x" in page and b"<b>x</b>" not in page


@pytest.mark.parametrize(
    "pasted",
    [
        "session-token=abcdef1234567890",
        "oauth_session_token=abcdef1234567890",
        "abcdef;ghijkl",
        '"quoted-token"',
        "a,b",
        "back\\slash",
    ],
)
def test_a_session_token_that_is_not_a_cookie_value_is_refused_and_nothing_stored(aws_env, pasted):
    from tradowix_bot.errors import BadRequest
    from tradowix_bot.server.admin import SessionTokenStore

    store = SessionTokenStore("/stack/tradowix/session-token")
    store.replace("tdx_good_token_1234567890")
    with pytest.raises(BadRequest) as refused:
        store.replace(pasted)
    assert refused.value.code == "invalid_session_token"
    assert "cookie" in refused.value.message
    stored = boto3.client("ssm").get_parameter(Name="/stack/tradowix/session-token", WithDecryption=True)
    assert stored["Parameter"]["Value"] == "tdx_good_token_1234567890"
