"""/api/docs: the machine-readable catalog, generated from the same route definitions as the
OpenAPI document (never a hand-kept copy of the endpoints)."""

from __future__ import annotations

from fastapi import FastAPI
from tradowix_bot.resample import COMMON_TIMEFRAMES
from tradowix_bot.server.ws_protocol import CLIENT_MESSAGES, SERVER_MESSAGES

from .errors import ERROR_TABLE


def _params(operation: dict) -> list[dict]:
    out = []
    for p in operation.get("parameters", []):
        schema = p.get("schema", {})
        types = [s.get("type") for s in schema.get("anyOf", [schema]) if s.get("type") not in (None, "null")]
        out.append(
            {
                "name": p["name"],
                "in": p["in"],
                "type": types[0] if types else "string",
                "required": p.get("required", False),
                "description": p.get("description", ""),
            }
        )
    return out


def catalog(app: FastAPI, *, rate_limit_per_minute: int) -> dict:
    spec = app.openapi()
    endpoints = []
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            endpoints.append(
                {
                    "method": method.upper(),
                    "path": path,
                    "summary": op.get("summary", ""),
                    "auth": op.get("x-auth", "none"),
                    "params": _params(op),
                }
            )
    return {
        "name": spec["info"]["title"],
        "version": spec["info"]["version"],
        "openapi": "/api/openapi.json",
        "authentication": {
            "key_format": "twk_ followed by at least 32 URL-safe characters",
            "where": [
                "X-Api-Key header",
                "api_key in the JSON body of POST /api/auth/verify",
                "api_key query (WebSocket)",
                "session cookie set by verify",
            ],
            "open_mode": "while no key exists, endpoints marked auth=key are open",
        },
        "endpoints": endpoints,
        "timeframes": {
            "rule": "seconds, at least 60 and a multiple of 60; bars are aligned to the unix epoch (4h bars start at 00:00, 04:00, ... UTC)",
            "common": list(COMMON_TIMEFRAMES),
            "base": 60,
        },
        "candles": {
            "limit": "the last N bars of the range (start/end, unix seconds), after resampling",
            "page_size": "the first N bars of the range, oldest first (forward paging)",
            "has_more": "true when the range holds bars this answer left out",
            "next": "relative URL (/api/candles?...) of the answer with those bars: the following page "
            "with page_size, the older bars when limit cut the range; null when nothing is left out. "
            "Following next until has_more is false yields every bar of the range once",
            "available_from / available_to": "oldest and newest stored 1m bar of the symbol (forming included)",
            "volume": "tick count of the bar, only when known (summed when resampled)",
            "milliseconds": "start/end are unix seconds; a value in milliseconds is a 400",
        },
        "rate_limits": {
            "scope": "per API key, per minute (windows aligned to the clock's minute)",
            "default_per_minute": rate_limit_per_minute,
            "headers": {
                "X-RateLimit-Limit": "requests per minute for this key",
                "X-RateLimit-Remaining": "requests left in this minute",
                "X-RateLimit-Reset": "seconds until the minute resets",
            },
            "over_the_limit": "429 {error: rate_limited} with Retry-After; on the WebSocket, "
            "subscribes count too and get an error message with retry_after",
        },
        "tradingview": {
            "protocol": "UDF (TradingView's UDFCompatibleDatafeed)",
            "base": "/udf",
            "endpoints": ["/udf/config", "/udf/symbols", "/udf/search", "/udf/history", "/udf/time"],
            "auth": "like the rest: X-Api-Key header (the adapter's Requester takes headers) or the session cookie",
        },
        "errors": {"body": {"error": "short_code", "message": "human sentence"}, "codes": ERROR_TABLE},
        "websocket": {"client_messages": CLIENT_MESSAGES, "server_messages": SERVER_MESSAGES},
    }
