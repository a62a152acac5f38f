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
        }
    },
    "bar": {
        "fields": {"symbol": "string", "timeframe": "integer", "candle": "bar", "closed": "bool (extension)"}
    },
    "timing": {"fields": {"symbol": "string", "timeframe": "integer", "timing": "timing object"}},
    "error": {"fields": {"error": "short code", "message": "string"}, "note": "the connection stays open"},
    "pong": {"fields": {}, "extension": True},
}
