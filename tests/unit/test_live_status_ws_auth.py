"""Given a caller with a key or with the gate's signed cookie, when it asks /api/live/status,
then the ws_url carries what the caller can prove (the key, or a signed session), and session
tokens never reach the logs."""

from __future__ import annotations

from tradowix_bot.server.authn import OPEN, Caller
from tradowix_bot.server.market import MarketData
from tradowix_bot.server.sessions import SessionSigner
from tradowix_bot.server.state import StateStore
from tradowix_bot.server.store import CandleStore


def _market(aws_env) -> MarketData:
    return MarketData(
        CandleStore(aws_env["CandlesBucket"]),
        StateStore(aws_env["StateTable"]),
        ws_url="wss://ws.example/live",
    )


def test_key_caller_gets_the_key_and_cookie_caller_a_signed_session(aws_env):
    market = _market(aws_env)
    assert (
        market.live_status(Caller(None, raw_key="twk_abc"))["ws_url"]
        == "wss://ws.example/live?api_key=twk_abc"
    )
    signer = SessionSigner("secret", 3600)
    token = signer.issue("key_1")
    url = market.live_status(OPEN, token)["ws_url"]
    assert url == f"wss://ws.example/live?session={token}"
    # the WebSocket side verifies it the way the API verifies the cookie
    assert signer.key_id(url.split("session=", 1)[1]) == "key_1"
    assert market.live_status(OPEN)["ws_url"] == "wss://ws.example/live"  # open mode


def test_session_tokens_are_redacted_from_logs():
    from tradowix_bot.server.redact import redact

    assert redact("GET /?session=abc.def.ghi") == "GET /?session=***"
