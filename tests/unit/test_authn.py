"""Given the domain authenticator (tradowix_bot/server/authn.py) on in-process moto's keys table, when a
request or connection carries a raw key, a session token or nothing, or an accepted connection is
re-checked, then it answers the caller or the contract's error code, open mode holds only while
the keys table exists and is empty, and rate limits are counted once per charged request."""

from __future__ import annotations

import time

import pytest
from tradowix_bot.errors import Forbidden, RateLimited, Unauthorized, Unavailable
from tradowix_bot.server.authn import OPEN, SEND_KEY_HTTP, SEND_KEY_WS, Authenticator
from tradowix_bot.server.keys import KeyRegistry, owner_session_id
from tradowix_bot.server.ratelimit import RateLimiter
from tradowix_bot.server.sessions import SessionSigner

SECRET = "a-test-cookie-secret"
T0 = 1_796_000_010.0  # 30 s into a minute: one rate-limit window for the whole test


@pytest.fixture
def registry(aws_env):
    return KeyRegistry(aws_env["KeysTable"], cache_seconds=0)


@pytest.fixture
def authn(aws_env, registry):
    limiter = RateLimiter(aws_env["StateTable"], clock=lambda: T0)
    return Authenticator(registry, sessions=lambda: SessionSigner(SECRET, 3600), rate_limiter=limiter)


def refused(call) -> tuple[str, int, str]:
    with pytest.raises((Unauthorized, Forbidden)) as exc:
        call()
    return exc.value.code, exc.value.status, exc.value.message


# -- open mode --------------------------------------------------------------------------------


def test_an_empty_keys_table_admits_everyone_and_counts_nothing(authn):
    # given no key exists
    # when a request carries nothing, or a made-up key
    nobody = authn.identify()
    anybody = authn.identify("twk_made_up")
    # then both are the open caller, reading every symbol, and no rate limit is counted
    assert nobody == anybody == OPEN
    assert nobody.open and nobody.key_id is None and nobody.may_read("EURUSD-OTC")
    assert authn.charge(nobody) is None


def test_a_missing_keys_table_is_an_outage_not_open_mode(aws_env, authn):
    # given the keys table was deleted
    from tradowix_bot.server import aws

    aws.client("dynamodb").delete_table(TableName=aws_env["KeysTable"])
    # when a request without a key arrives, then it is refused as unavailable (503), not admitted
    with pytest.raises(Unavailable) as exc:
        authn.identify()
    assert exc.value.status == 503


def test_open_mode_ends_for_key_less_connections_once_a_key_exists(authn, registry):
    # given a connection accepted in open mode (no key id stored)
    assert authn.recheck(None) == OPEN
    # when a first key is created
    registry.create("first partner")
    # then its re-check refuses it with missing_key, telling it to reconnect with a key
    code, status, message = refused(lambda: authn.recheck(None))
    assert (code, status) == ("missing_key", 401)
    assert "reconnect" in message


# -- keys exist -------------------------------------------------------------------------------


def test_a_valid_raw_key_is_its_caller(authn, registry):
    record, raw = registry.create("partner", symbols=["BTCUSD-OTC"])
    caller = authn.identify(raw)
    assert (caller.key_id, caller.raw_key, caller.open) == (record.key_id, raw, False)
    assert caller.may_read("BTCUSD-OTC") and not caller.may_read("EURUSD-OTC")


def test_without_a_key_the_channel_says_how_to_send_one(authn, registry):
    registry.create("partner")
    http = refused(lambda: authn.identify())
    ws = refused(lambda: authn.identify(send_key=SEND_KEY_WS))
    assert http == ("missing_key", 401, f"an API key is required: {SEND_KEY_HTTP}")
    assert ws == ("missing_key", 401, f"an API key is required: {SEND_KEY_WS}")


@pytest.mark.parametrize(
    "raw, code",
    [("not-a-key", "invalid_key"), ("twk_unknown_but_well_formed", "invalid_key"), ("", "missing_key")],
)
def test_bad_raw_keys_are_refused_with_their_code(authn, registry, raw, code):
    registry.create("partner")
    assert refused(lambda: authn.identify(raw))[:2] == (code, 401)


def test_a_disabled_key_is_refused_on_connect_and_on_recheck(authn, registry):
    record, raw = registry.create("partner")
    registry.set_enabled(record.key_id, False)
    assert refused(lambda: authn.identify(raw))[:2] == ("key_disabled", 401)
    assert refused(lambda: authn.recheck(record.key_id))[:2] == ("key_disabled", 401)


def test_a_deleted_key_ends_an_accepted_connection(authn, registry):
    record, raw = registry.create("partner")
    assert authn.recheck(record.key_id).key_id == record.key_id
    registry.delete(record.key_id)
    assert refused(lambda: authn.recheck(record.key_id))[:2] == ("invalid_key", 401)


# -- session tokens ---------------------------------------------------------------------------


def test_a_signed_session_token_names_its_key(authn, registry):
    record, _ = registry.create("partner")
    token = SessionSigner(SECRET, 3600).issue(record.key_id)
    caller = authn.identify(session_token=token)
    assert (caller.key_id, caller.raw_key) == (record.key_id, None)


def test_bad_or_expired_session_tokens_are_refused_with_their_code(authn, registry):
    record, _ = registry.create("partner")
    forged = SessionSigner("another-secret", 3600).issue(record.key_id)
    stale = Authenticator(registry, sessions=lambda: SessionSigner(SECRET, -1))  # every token too old
    owner_ended = SessionSigner(SECRET, 3600).issue(owner_session_id(int(time.time()) - 1))
    assert refused(lambda: authn.identify(session_token=forged))[:2] == ("invalid_session", 401)
    token = SessionSigner(SECRET, 3600).issue(record.key_id)
    assert refused(lambda: stale.identify(session_token=token))[:2] == ("session_expired", 401)
    assert refused(lambda: authn.identify(session_token=owner_ended))[:2] == ("session_expired", 401)


def test_a_raw_key_is_checked_before_a_session_token(authn, registry):
    record, raw = registry.create("partner")
    caller = authn.identify(raw, session_token="garbage")
    assert caller.key_id == record.key_id


def test_a_channel_without_sessions_ignores_session_tokens(registry):
    record, _ = registry.create("partner")
    token = SessionSigner(SECRET, 3600).issue(record.key_id)
    assert refused(lambda: Authenticator(registry).identify(session_token=token))[:2] == ("missing_key", 401)


# -- symbols and rate limits ------------------------------------------------------------------


def test_a_restricted_key_may_not_read_other_symbols(authn, registry):
    _, raw = registry.create("partner", symbols=["BTCUSD-OTC"])
    caller = authn.identify(raw)
    caller.require_symbol("BTCUSD-OTC")  # allowed: nothing raised
    code, status, message = refused(lambda: caller.require_symbol("EURUSD-OTC"))
    assert (code, status) == ("symbol_forbidden", 403)
    assert "EURUSD-OTC" in message
    OPEN.require_symbol("EURUSD-OTC")  # open mode reads everything


def test_each_charge_counts_one_request_against_the_keys_limit(authn, registry):
    # given a key limited to 2 requests per minute
    _, raw = registry.create("partner", rate_limit=2)
    caller = authn.identify(raw)
    # when it is charged 3 times in one minute (identifying it counts nothing)
    first, second = authn.admit(caller), authn.admit(caller)
    with pytest.raises(RateLimited) as exc:
        authn.admit(caller)
    # then the first two pass with the count going down, the third is refused with a retry time
    assert (first.limit, first.remaining, second.remaining) == (2, 1, 0)
    assert exc.value.code == "rate_limited" and exc.value.retry_after == 30
    assert authn.charge(caller).allowed is False
