"""Given the admin domain (secret check, sessions, CSRF, login throttle, write-only session
token), when the owner or an attacker uses it, then only the owner's secret opens a session,
sessions and CSRF tokens cannot be reused elsewhere, failures are throttled, and the session
token is stored encrypted and never returned."""

from __future__ import annotations

import boto3
import pytest
from tradowix_bot.errors import BadRequest, Forbidden, RateLimited, Unauthorized
from tradowix_bot.server.admin import (
    AdminSecretStore,
    AdminSessions,
    LoginThrottle,
    SessionTokenStore,
    hash_secret,
    secret_matches,
)
from tradowix_bot.server.state import StateStore


def test_hashed_and_plain_secrets_verify_and_wrong_ones_do_not():
    stored = hash_secret("correct horse", iterations=1000)
    assert "correct horse" not in stored
    assert secret_matches("correct horse", stored)
    assert not secret_matches("correct hors", stored)
    assert secret_matches("plain-put-by-hand", "plain-put-by-hand")
    assert not secret_matches("x", "plain-put-by-hand")
    assert not secret_matches("x", "pbkdf2_sha256$broken")


def test_session_cookie_expires_and_ends_when_the_secret_changes():
    sessions = AdminSessions("cookie-secret", "fp1", max_age=3600)
    issued = sessions.issue()
    assert sessions.open(issued.cookie).csrf_token == issued.csrf_token
    with pytest.raises(Unauthorized):
        AdminSessions("cookie-secret", "fp2", max_age=3600).open(issued.cookie)  # secret replaced
    with pytest.raises(Unauthorized):
        AdminSessions("cookie-secret", "fp1", max_age=-1).open(issued.cookie)  # expired
    with pytest.raises(Unauthorized):
        sessions.open(issued.cookie[:-2] + "xx")  # tampered
    with pytest.raises(Unauthorized):
        sessions.open(None)


def test_a_partner_cookie_is_not_an_admin_session():
    from tradowix_bot.server.sessions import SessionSigner

    partner_cookie = SessionSigner("cookie-secret", 3600).issue("key_1")
    with pytest.raises(Unauthorized):
        AdminSessions("cookie-secret", "fp", 3600).open(partner_cookie)


def test_csrf_token_belongs_to_its_session():
    sessions = AdminSessions("cookie-secret", "fp", 3600)
    a, b = sessions.issue(), sessions.issue()
    sessions.require_csrf(a, a.csrf_token)
    for wrong in (None, "", b.csrf_token):
        with pytest.raises(Forbidden):
            sessions.require_csrf(a, wrong)


def test_login_throttle_counts_before_checking_locks_at_the_fifth_and_doubles(aws_env):
    now = [1000.0]
    throttle = LoginThrottle(StateStore(aws_env["StateTable"]), clock=lambda: now[0])
    locks = []
    for _ in range(7):
        now[0] += locks[-1] if locks else 0  # wait out the previous lock
        locks.append(throttle.claim("10.0.0.1"))
    assert locks == [0, 0, 0, 0, 2, 4, 8]
    with pytest.raises(RateLimited) as exc:
        throttle.claim("10.0.0.1")
    assert exc.value.retry_after == 8
    throttle.check("10.0.0.2")  # another address is not affected
    now[0] += 9
    throttle.check("10.0.0.1")  # the wait is over
    throttle.succeeded("10.0.0.1")
    assert throttle.claim("10.0.0.1") == 0  # a success forgets the attempts


def test_admin_secret_missing_says_where_to_put_it(aws_env):
    with pytest.raises(Unauthorized) as exc:
        AdminSecretStore("/t/admin-secret").check("anything")
    assert "/t/admin-secret" in exc.value.message
    boto3.client("ssm").put_parameter(
        Name="/t/admin-secret2", Value=hash_secret("s", iterations=1000), Type="SecureString"
    )
    store = AdminSecretStore("/t/admin-secret2")
    assert store.check("s") and not store.check("t")


def test_session_token_is_stored_as_secure_string_and_never_returned(aws_env):
    store = SessionTokenStore("/stack/tradowix/session-token")
    assert store.status() == {"set": False, "set_at": None}
    status = store.replace("  tok_abc123  ")
    assert status["set"] is True and status["set_at"].endswith("Z")
    assert "tok_abc123" not in repr(status)
    param = boto3.client("ssm").get_parameter(Name="/stack/tradowix/session-token", WithDecryption=True)[
        "Parameter"
    ]
    assert param["Type"] == "SecureString" and param["Value"] == "tok_abc123"
    for bad in ("", " ", "x" * 10_000, "a b", None, 42):
        with pytest.raises(BadRequest):
            store.replace(bad)
    assert (
        boto3.client("ssm").get_parameter(Name="/stack/tradowix/session-token", WithDecryption=True)[
            "Parameter"
        ]["Value"]
        == "tok_abc123"
    )
