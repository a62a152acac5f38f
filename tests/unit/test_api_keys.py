"""Given the partner API and its key registry on an injected clock (a warm function), when keys
are created, disabled, deleted, restricted or used, then only a hash is stored, the API is open
while no key exists, restrictions hold, and a warm function notices each change within its
documented bound."""

from __future__ import annotations

import json

import boto3
import pytest
from tradowix_bot.server.keys import KeyRegistry, hash_key
from unit_helpers import get, invoke

CANDLES = {"symbol": "BTCUSD-OTC", "limit": 3}
KEY_CACHE_SECONDS = 30  # the documented bound (KEY_CACHE_SECONDS, default 30)


class Clock:
    def __init__(self, now: float = 1000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def warm_registry(api, clock, monkeypatch):
    """The API's key registry, as a warm Lambda container holds it, on an injected clock."""
    from partner_api import context

    registry = KeyRegistry(api["KeysTable"], cache_seconds=KEY_CACHE_SECONDS, clock=clock)
    monkeypatch.setattr(context.services, "keys", lambda: registry)
    return registry


def candles_with(raw_key: str | None, **query):
    return get("/api/candles", {**CANDLES, **query}, headers={"X-Api-Key": raw_key} if raw_key else None)


def test_only_a_hash_of_the_key_is_stored(api, admin):
    # when: a key is created
    record, raw = admin.create("partner-1", ["BTCUSD-OTC"])
    # then: the table holds its SHA-256 and nothing from which the key can be read back
    items = boto3.client("dynamodb").scan(TableName=api["KeysTable"])["Items"]
    dumped = json.dumps(items)
    assert raw.startswith("twk_") and len(raw) >= 4 + 32
    assert raw not in dumped and raw[4:] not in dumped and raw[4:24] not in dumped
    assert hash_key(raw) in dumped
    assert "key_hash" not in record.public() and raw not in json.dumps(record.public())


def test_endpoints_are_open_while_no_key_exists(api):
    assert get("/api/candles", CANDLES).status == 200
    assert get("/api/symbols").status == 200
    assert get("/api/timing", {"symbol": "BTCUSD-OTC"}).status == 200
    assert get("/api/live/status").json()["live"] is False
    verify = invoke("verify_post.json", drop_body=True)
    assert verify.status == 200 and verify.json()["open"] is True


def test_first_key_closes_open_mode_at_once_on_a_warm_function(warm_registry, admin, clock):
    # given: a warm function that has seen the empty table
    assert get("/api/candles", CANDLES).status == 200
    # when: the owner creates the first key with the CLI (another process), the same instant
    _, raw = admin.create("first")
    # then: no key is refused, the new key is honoured and named by verify
    refused = get("/api/candles", CANDLES)
    assert refused.status == 401 and refused.json()["error"] == "missing_key"
    assert candles_with(raw).status == 200
    verify = invoke("verify_post.json", body=json.dumps({"api_key": raw}))
    assert verify.json()["name"] == "first" and verify.json()["open"] is False


def test_open_mode_returns_when_the_last_key_is_deleted(warm_registry, admin, clock):
    record, raw = admin.create("only")
    clock.advance(1.0)
    assert get("/api/candles", CANDLES).status == 401
    admin.delete(record.key_id)
    clock.advance(KEY_CACHE_SECONDS)
    assert get("/api/candles", CANDLES).status == 200


def test_new_key_works_within_one_second_on_a_warm_function(warm_registry, admin, clock):
    # given: a warm function with one key in its snapshot
    _, old = admin.create("old")
    assert candles_with(old).status == 200
    # when: another key is created elsewhere, a second later
    clock.advance(1.0)
    _, new = admin.create("new")
    # then: it is accepted at once, long before the cache period ends
    assert candles_with(new).status == 200


def test_key_works_as_soon_as_the_cli_returns_even_just_after_a_refresh(warm_registry, admin, clock):
    # given: a warm function that has just (re)loaded its key snapshot
    _, old = admin.create("old")
    assert candles_with(old).status == 200
    # when: the owner creates a key with the CLI in that same instant (no time passes)
    _, new = admin.create("new")
    # then: the partner's first request with it is served, not refused with invalid_key
    answer = candles_with(new)
    assert answer.status == 200, answer.json()


def test_re_enabled_key_works_as_soon_as_the_cli_returns(warm_registry, admin, clock):
    # given: a key the warm function knows as disabled
    admin.create("another partner")
    record, raw = admin.create("partner")
    admin.set_enabled(record.key_id, False)
    assert candles_with(raw).json()["error"] == "key_disabled"
    # when: the owner enables it again, with no time passing
    admin.set_enabled(record.key_id, True)
    # then: it works at once
    assert candles_with(raw).status == 200


class DynamoCalls:
    """Counts the DynamoDB operations the API makes (what they cost is what a flood costs)."""

    def __init__(self):
        self.names: list[str] = []

    def __call__(self, model, **_):
        self.names.append(model.name)

    def count(self, name: str) -> int:
        return self.names.count(name)


def test_a_flood_of_bad_keys_costs_one_small_read_each_and_no_table_scan(warm_registry, admin, clock):
    from tradowix_bot.server import aws

    # given: a warm function with a key table of several keys
    for i in range(5):
        _, raw = admin.create(f"partner {i}")
    assert candles_with(raw).status == 200
    calls = DynamoCalls()
    aws.resource("dynamodb").meta.client.meta.events.register("before-call.dynamodb", calls)
    # when: 20 requests with unknown keys arrive, a second apart (within the cache period)
    refused = []
    for i in range(20):
        clock.advance(1.0)
        refused.append(candles_with("twk_" + f"{i:02d}" * 22).json()["error"])
    # then: each is refused after one consistent GetItem of the version item, and the key
    # table is never scanned (its size does not multiply the cost of an attack)
    assert refused == ["invalid_key"] * 20
    assert calls.count("Scan") == 0
    assert calls.count("GetItem") == 20
    # and: a key created now still works at once
    _, new = admin.create("new")
    assert candles_with(new).status == 200


@pytest.mark.parametrize("action", ["disable", "delete"])
def test_disabled_or_deleted_key_is_refused_within_30_seconds_on_a_warm_function(
    warm_registry, admin, clock, action
):
    # given: a key in use on a warm function, also through a browser session cookie
    admin.create("another partner")  # deleting the last key would reopen the API (the rule)
    record, raw = admin.create("partner")
    assert candles_with(raw).status == 200
    verify = invoke("verify_post.json", body=json.dumps({"api_key": raw}))
    cookie = verify.cookies[0].split(";")[0]
    # when: the owner disables or deletes it with the CLI (another process)
    if action == "disable":
        admin.set_enabled(record.key_id, False)
    else:
        admin.delete(record.key_id)
    # then: within the documented bound, the key and its cookie are refused
    clock.advance(KEY_CACHE_SECONDS)
    by_key = candles_with(raw)
    by_cookie = invoke("symbols_get_cookie.json", cookies=[cookie])
    assert by_key.status == 401 and by_cookie.status == 401
    expected = "key_disabled" if action == "disable" else "invalid_key"
    assert by_key.json()["error"] == expected
    assert set(by_key.json()) == {"error", "message"}


def test_re_enabled_key_works_again(warm_registry, admin, clock):
    record, raw = admin.create("partner")
    admin.set_enabled(record.key_id, False)
    clock.advance(1.0)
    assert candles_with(raw).json()["error"] == "key_disabled"
    admin.set_enabled(record.key_id, True)
    clock.advance(KEY_CACHE_SECONDS)
    assert candles_with(raw).status == 200


def test_restricted_key_reads_only_its_symbols(api, admin):
    # given: a key limited to EURUSD-OTC
    _, raw = admin.create("eur-only", ["EURUSD-OTC"])
    headers = {"X-Api-Key": raw}
    # then: other symbols are 403 on candles and timing, its own symbol works
    for path in ("/api/candles", "/api/timing"):
        answer = get(path, {"symbol": "BTCUSD-OTC"}, headers)
        assert answer.status == 403
        assert answer.json() == {"error": "symbol_forbidden", "message": answer.json()["message"]}
        assert "BTCUSD-OTC" in answer.json()["message"]
    assert get("/api/candles", {"symbol": "EURUSD-OTC"}, headers).status == 200
    # and /api/symbols lists only the allowed symbol
    listed = get("/api/symbols", headers=headers).json()
    assert [s["symbol"] for s in listed["symbols"]] == ["EURUSD-OTC"]
    assert listed["categories"] == {"currencies": ["EURUSD-OTC"]}
    assert listed["all_symbols"] is False
    # and verify says so
    verify = invoke("verify_post.json", body=json.dumps({"api_key": raw})).json()
    assert verify["all_symbols"] is False and verify["symbols"] == ["EURUSD-OTC"]


def test_restriction_change_applies_to_a_symbol_with_no_data_as_403_not_404(api, admin):
    _, raw = admin.create("eur-only", ["EURUSD-OTC"])
    answer = get("/api/candles", {"symbol": "GBPUSD-OTC"}, {"X-Api-Key": raw})
    assert answer.status == 403


def test_unrestricted_key_lists_every_symbol(api, admin):
    _, raw = admin.create("all")
    listed = get("/api/symbols", headers={"X-Api-Key": raw}).json()
    assert {"BTCUSD-OTC", "EURUSD-OTC"} <= {s["symbol"] for s in listed["symbols"]}
    assert listed["all_symbols"] is True


def test_key_in_the_query_string_is_accepted_and_header_wins(api, admin):
    _, raw = admin.create("ws")
    assert get("/api/candles", {**CANDLES, "api_key": raw}).status == 200
    both = get("/api/candles", {**CANDLES, "api_key": raw}, {"X-Api-Key": "twk_" + "x" * 43})
    assert both.status == 401  # the header is checked first, as the contract orders them


def test_last_use_is_recorded(api, admin):
    record, raw = admin.create("partner")
    assert admin.get(record.key_id).last_used_at is None
    candles_with(raw)
    assert admin.get(record.key_id).last_used_at is not None
