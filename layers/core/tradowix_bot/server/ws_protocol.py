"""The live WebSocket protocol of the partner contract, as data: published by /api/docs and
used by the WebSocket handlers to validate messages."""

from __future__ import annotations

CLIENT_MESSAGES = {
    "subscribe": {"fields": {"symbol": "string", "timeframe": "integer seconds, >= 60, multiple of 60"}},
    "unsubscribe": {"fields": {"symbol": "string", "timeframe": "integer seconds"}, "extension": True},
    "ping": {"fields": {}, "answer": "pong", "extension": True},
}

SERVER_MESSAGES = {
    "status": {"fields": {"connected": "bool", "upstream_ready": "bool", "message": "string, optional"}},
    "history": {
        "fields": {
            "symbol": "string",
            "timeframe": "integer",
            "candles": "list of bars",
            "timing": "timing object",
        },
        "note": "the last 500 bars of the subscription, trimmed so the message stays under 128 KB; "
        "older bars: GET /api/candles",
    },
    "bar": {
        "fields": {"symbol": "string", "timeframe": "integer", "candle": "bar", "closed": "bool (extension)"}
    },
    "timing": {"fields": {"symbol": "string", "timeframe": "integer", "timing": "timing object"}},
    "error": {
        "fields": {"error": "short code", "message": "string"},
        "note": "the connection stays open, except after key_disabled / invalid_key / missing_key; "
        "codes: invalid_json, invalid_message, missing_type, unknown_type, missing_symbol, invalid_symbol, "
        "invalid_timeframe, symbol_forbidden, no_data, too_many_subscriptions (at most 50 per connection), "
        "not_subscribed, rate_limited (subscribes count against the key's per-minute limit; "
        "`retry_after` says in how many seconds to try again)",
    },
    "pong": {"fields": {}, "extension": True},
}

# -- building messages (one place, so handlers and the publisher send the same shapes) ---------
# API Gateway refuses a message over 128 KB; every message we build stays under this.
MAX_MESSAGE_BYTES = 128 * 1024


def status(upstream_ready: bool, message: str | None = None) -> dict:
    msg = {"type": "status", "connected": True, "upstream_ready": upstream_ready}
    if message:
        msg["message"] = message
    return msg


def history(symbol: str, timeframe: int, candles: list[dict], timing: dict) -> dict:
    return {"type": "history", "symbol": symbol, "timeframe": timeframe, "candles": candles, "timing": timing}


def bar(symbol: str, timeframe: int, candle: dict, closed: bool) -> dict:
    return {"type": "bar", "symbol": symbol, "timeframe": timeframe, "candle": candle, "closed": closed}


def timing(symbol: str, timeframe: int, timing_obj: dict) -> dict:
    return {"type": "timing", "symbol": symbol, "timeframe": timeframe, "timing": timing_obj}


def error(code: str, message: str, **context) -> dict:
    return {"type": "error", "error": code, "message": message, **context}


def pong(server_time: float) -> dict:
    return {"type": "pong", "server_time": round(server_time, 3)}
