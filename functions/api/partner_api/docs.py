"""/api/docs: the machine-readable catalog, generated from the same route definitions as the
OpenAPI document (never a hand-kept copy of the endpoints)."""

from __future__ import annotations

from fastapi import FastAPI
from tradowix_bot.resample import COMMON_TIMEFRAMES
from tradowix_bot.ws_protocol import CLIENT_MESSAGES, SERVER_MESSAGES

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


def catalog(app: FastAPI) -> dict:
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
        "errors": {"body": {"error": "short_code", "message": "human sentence"}, "codes": ERROR_TABLE},
        "websocket": {"client_messages": CLIENT_MESSAGES, "server_messages": SERVER_MESSAGES},
    }
