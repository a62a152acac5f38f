"""Given the live WebSocket handler on in-process moto, when API Gateway events arrive (fixtures
in tests/unit/events/ws_*.json), then the handler answers the handshake and posts the
contract's messages through @connections (recorded here instead of sent)."""

from __future__ import annotations

import copy
import json
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "functions" / "ws"))
EVENTS = Path(__file__).parent / "events"
CONN = "Pj5Uvc5boAMCKpA="


def event(name: str, **changes) -> dict:
    ev = json.loads((EVENTS / f"ws_{name}.json").read_text())
    for k, v in changes.items():
        ev[k] = v
    return ev


def message(body: str) -> dict:
    return event("message", body=body)


class RecordingPoster:
    """Stands in for the @connections API: records what would be sent."""

    def __init__(self, endpoint_url: str = ""):
        self.sent: list[tuple[str, dict]] = []
        self.deleted: list[str] = []

    def post(self, connection_id, msg):
        self.sent.append((connection_id, msg if isinstance(msg, dict) else json.loads(msg)))
        return "ok"

    def delete(self, connection_id):
        self.deleted.append(connection_id)
        return "ok"

    def types(self) -> list[str]:
        return [m["type"] for _, m in self.sent]


@pytest.fixture
def ws(aws_env, monkeypatch):
    from tradowix_bot.server.store import CandleStore
    from tradowix_local.template import Template

    for k, v in Template().functions()["WsFunction"].environment.items():
        monkeypatch.setenv(k, v)
    from live_ws import context, handler  # its settings are validated at import, as at Lambda's init

    poster = RecordingPoster()
    monkeypatch.setattr("tradowix_bot.server.live_poster.ConnectionPoster", lambda endpoint: poster)
    context.reset()
    now = int(time.time()) - int(time.time()) % 60
    bars = [(now - 60 * (2000 - i), 100.0 + i, 101.0 + i, 99.0 + i, 100.5 + i) for i in range(2000)]
    CandleStore(aws_env["CandlesBucket"]).write("BTCUSD-OTC", bars)
    yield SimpleNamespace(handler=handler.handler, poster=poster)
    context.reset()


def connect(ws, **query) -> dict:
    ev = event("connect")
    if query:
        ev["queryStringParameters"] = query
    return ws.handler(ev, None)


def test_subscribe_sends_status_history_timing_in_order(ws):
    # given: open mode (no key exists) and a connection
    assert connect(ws)["statusCode"] == 200
    # when: a 5m subscribe arrives
    ws.handler(event("message"), None)
    # then: status, history (bounded, under 128 KB), timing
    assert ws.poster.types() == ["status", "history", "timing"]
    history = ws.poster.sent[1][1]
    assert history["symbol"] == "BTCUSD-OTC" and history["timeframe"] == 300
    assert 0 < len(history["candles"]) <= 500
    assert all(c["time"] % 300 == 0 for c in history["candles"])
    assert len(json.dumps(history).encode()) < 128 * 1024


def test_connect_refused_with_401_when_keys_exist(ws, aws_env):
    from tradowix_bot.server.keys import KeyRegistry

    _, raw = KeyRegistry(aws_env["KeysTable"]).create("partner")
    # when: no key, a wrong key, then the right key in the query and in the header
    assert connect(ws)["statusCode"] == 401
    assert json.loads(connect(ws)["body"])["error"] == "missing_key"
    assert connect(ws, api_key="twk_wrong")["statusCode"] == 401
    assert connect(ws, api_key=raw)["statusCode"] == 200
    ev = event("connect")
    ev["headers"]["X-Api-Key"] = raw
    assert ws.handler(ev, None)["statusCode"] == 200


def test_connect_accepts_the_browser_session_token_of_ws_url(ws, aws_env):
    # given: a key, and the signed session token /api/live/status hands a browser signed in by cookie
    from tradowix_bot.server.keys import KeyRegistry
    from tradowix_bot.server.sessions import SessionSigner
    from tradowix_bot.server.state import StateStore

    record, _ = KeyRegistry(aws_env["KeysTable"]).create("browser partner")
    signer = SessionSigner(StateStore(aws_env["StateTable"]).cookie_secret(), 3600)
    # when / then: the genuine token connects; a forged or tampered one is refused with 401
    assert connect(ws, session=signer.issue(record.key_id))["statusCode"] == 200
    forged = SessionSigner("not-the-secret", 3600).issue(record.key_id)
    refused = connect(ws, session=forged)
    assert refused["statusCode"] == 401 and json.loads(refused["body"])["error"] == "invalid_session"
    assert connect(ws, session=signer.issue(record.key_id)[:-2] + "xx")["statusCode"] == 401
    # and a token of a key disabled since is refused too
    KeyRegistry(aws_env["KeysTable"]).set_enabled(record.key_id, False)
    ws_live_registry_refresh(ws)
    assert connect(ws, session=signer.issue(record.key_id))["statusCode"] == 401


def ws_live_registry_refresh(ws) -> None:
    from live_ws import context

    context.services.live_socket().keys.invalidate()


@pytest.mark.parametrize(
    "body, code",
    [
        ("not json", "invalid_json"),
        ("[1, 2]", "invalid_message"),
        ('{"symbol": "BTCUSD-OTC"}', "missing_type"),
        ('{"type": "trade"}', "unknown_type"),
        ('{"type": "subscribe", "timeframe": 60}', "missing_symbol"),
        ('{"type": "subscribe", "symbol": "BTCUSD-OTC", "timeframe": 30}', "invalid_timeframe"),
        ('{"type": "subscribe", "symbol": "BTCUSD-OTC", "timeframe": 90}', "invalid_timeframe"),
        ('{"type": "subscribe", "symbol": "BTCUSD-OTC", "timeframe": "5m"}', "invalid_timeframe"),
        ('{"type": "subscribe", "symbol": "../etc", "timeframe": 60}', "invalid_symbol"),
        ('{"type": "subscribe", "symbol": "NOPE-OTC", "timeframe": 60}', "no_data"),
        ('{"type": "unsubscribe", "symbol": "BTCUSD-OTC", "timeframe": 60}', "not_subscribed"),
    ],
)
def test_bad_messages_answer_an_error_and_subscribe_nothing(ws, body, code):
    from live_ws import context

    connect(ws)
    ws.handler(message(body), None)
    assert ws.poster.types() == ["error"]
    assert ws.poster.sent[0][1]["error"] == code
    assert context.services.live_socket().connections.subscriptions(CONN) == []
    assert context.services.live_socket().connections.get(CONN) is not None  # the connection stays


def test_symbol_not_allowed_for_the_key(ws, aws_env):
    from live_ws import context
    from tradowix_bot.server.keys import KeyRegistry

    _, raw = KeyRegistry(aws_env["KeysTable"]).create("eth only", ["ETHUSD-OTC"])
    connect(ws, api_key=raw)
    ws.handler(event("message"), None)
    assert ws.poster.sent[0][1]["error"] == "symbol_forbidden"
    assert context.services.live_socket().connections.subscriptions(CONN) == []


def test_burst_of_subscribes_is_bounded(ws, monkeypatch):
    from live_ws import context
    from tradowix_bot.server.live_connections import MAX_SUBSCRIPTIONS

    connect(ws)
    monkeypatch.setattr(context.services.live_socket(), "history_bars", 5)  # keep the test fast
    for tf in range(1, 61):
        ws.handler(
            message(json.dumps({"type": "subscribe", "symbol": "BTCUSD-OTC", "timeframe": 60 * tf})), None
        )
    errors = [m for _, m in ws.poster.sent if m["type"] == "error"]
    assert len(context.services.live_socket().connections.subscriptions(CONN)) == MAX_SUBSCRIPTIONS
    assert len(errors) == 60 - MAX_SUBSCRIPTIONS
    assert {e["error"] for e in errors} == {"too_many_subscriptions"}


def test_resubscribe_and_unsubscribe(ws):
    from live_ws import context

    connect(ws)
    ws.handler(event("message"), None)
    ws.handler(event("message"), None)  # the same subscription again: history again, one record
    assert len(context.services.live_socket().connections.subscriptions(CONN)) == 1
    assert context.services.live_socket().connections.get(CONN).subscriptions == 1
    ws.handler(message('{"type": "unsubscribe", "symbol": "BTCUSD-OTC", "timeframe": 300}'), None)
    assert context.services.live_socket().connections.subscriptions(CONN) == []
    assert context.services.live_socket().connections.get(CONN).subscriptions == 0
    assert ws.poster.sent[-1][1]["message"] == "unsubscribed from BTCUSD-OTC 300"


def test_disabled_key_is_told_and_closed_on_its_next_message(ws, aws_env):
    from live_ws import context
    from tradowix_bot.server.keys import KeyRegistry

    registry = KeyRegistry(aws_env["KeysTable"])
    record, raw = registry.create("partner")
    connect(ws, api_key=raw)
    registry.set_enabled(record.key_id, False)
    context.services.live_socket().keys.invalidate()
    ws.handler(event("message"), None)
    assert ws.poster.sent[0][1]["error"] == "key_disabled"
    assert ws.poster.deleted == [CONN]
    assert context.services.live_socket().connections.get(CONN) is None


def test_ping_and_disconnect(ws):
    from live_ws import context

    connect(ws)
    ws.handler(message('{"type": "ping"}'), None)
    assert ws.poster.types() == ["pong"]
    ws.handler(event("message"), None)
    assert ws.handler(event("disconnect"), None)["statusCode"] == 200
    assert context.services.live_socket().connections.get(CONN) is None
    assert context.services.live_socket().connections.subscribers("BTCUSD-OTC") == []


def test_history_is_trimmed_under_the_message_limit():
    from tradowix_bot.server.live_socket import HISTORY_MAX_BYTES, bounded_history

    candles = [
        {"time": i * 60, "open": 1.123456789, "high": 2.0, "low": 0.5, "close": 1.5} for i in range(5000)
    ]
    msg = bounded_history("BTCUSD-OTC", 60, copy.deepcopy(candles), {})
    size = len(json.dumps(msg, separators=(",", ":")).encode())
    assert size <= HISTORY_MAX_BYTES
    assert msg["candles"][-1] == candles[-1]  # the newest bars are kept
