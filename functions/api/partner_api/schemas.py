"""What the published OpenAPI document (/api/openapi.json) promises, kept next to the code that
keeps the promise: strict query integers, every parameter's bounds as the server enforces
them, every status an operation can answer with its body and headers, and the security
schemes. FastAPI generates the document from the routes; `openapi_document` corrects what it
cannot know (no 422 is ever sent: validation errors are 400 with the error body)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BeforeValidator
from tradowix_bot.candles import MAX_SYMBOL_LENGTH, SYMBOL_PATTERN
from tradowix_bot.resample import BASE_TIMEFRAME, MAX_TIMEFRAME
from tradowix_bot.server.market import MAX_UNIX_SECONDS
from tradowix_bot.server.sessions import COOKIE_NAME
from tradowix_bot.server.udf import ACCEPTED_RESOLUTIONS, EXCHANGE

from .errors import ERROR_TABLE

_MAX_DIGITS = 15


def _digits_only(value: Any) -> Any:
    """Query integers are digits and nothing else: ' 5', '+3', '3_0', '60.0', '1e3' are refused
    (Python's int() and pydantic's lax mode accept most of them)."""
    if isinstance(value, str) and not (value.isascii() and value.isdigit() and len(value) <= _MAX_DIGITS):
        raise ValueError(f"must be a whole number written with digits only, e.g. 300 (got {value[:20]!r})")
    return value


StrictInt = Annotated[int, BeforeValidator(_digits_only)]


def _integer(minimum: int, maximum: int, **extra) -> dict:
    return {"type": "integer", "minimum": minimum, "maximum": maximum, **extra}


def parameter_schemas(path: str, max_limit: int) -> dict[str, dict]:
    """The schema of each query parameter of `path`, by name, exactly as the server validates it."""
    count = _integer(1, max_limit)
    unix = _integer(0, MAX_UNIX_SECONDS)
    symbol = {"type": "string", "minLength": 1, "maxLength": MAX_SYMBOL_LENGTH, "pattern": SYMBOL_PATTERN}
    if path.startswith("/udf/"):
        prefix = EXCHANGE + ":"
        return {
            "symbol": {
                "anyOf": [
                    symbol,
                    {
                        "type": "string",
                        "maxLength": len(prefix) + MAX_SYMBOL_LENGTH,
                        "pattern": "^" + prefix + SYMBOL_PATTERN.removeprefix("^"),
                    },
                ]
            },
            "resolution": {"type": "string", "enum": list(ACCEPTED_RESOLUTIONS)},
            "from": unix,
            "to": unix,
            "countback": count,
            "limit": _integer(1, 100),
        }
    return {
        "symbol": symbol,
        "timeframe": _integer(
            BASE_TIMEFRAME, MAX_TIMEFRAME, multipleOf=BASE_TIMEFRAME, default=BASE_TIMEFRAME
        ),
        "limit": count,
        "page_size": count,
        "start": unix,
        "end": unix,
    }


# -- response bodies ------------------------------------------------------------------------
NULLABLE_INT = {"type": ["integer", "null"]}
NULLABLE_STRING = {"type": ["string", "null"]}
ERROR = {
    "type": "object",
    "required": ["error", "message"],
    "properties": {
        "error": {"type": "string", "description": "short code, e.g. invalid_timeframe"},
        "message": {"type": "string", "description": "a sentence for a person"},
    },
}
TIMING = {
    "type": "object",
    "required": [
        "symbol",
        "timeframe",
        "server_time",
        "bar_open",
        "bar_close",
        "elapsed",
        "seconds_left",
        "progress",
    ],
    "properties": {
        "symbol": {"type": "string"},
        "timeframe": {"type": "integer"},
        "server_time": {"type": "number"},
        "bar_open": {"type": "integer"},
        "bar_close": {"type": "integer"},
        "elapsed": {"type": "number"},
        "seconds_left": {"type": "number"},
        "progress": {"type": "number", "minimum": 0, "maximum": 1},
    },
}
CANDLE = {
    "type": "object",
    "required": ["time", "open", "high", "low", "close"],
    "properties": {
        "time": {"type": "integer", "description": "the bar's open, unix seconds"},
        "open": {"type": "number"},
        "high": {"type": "number"},
        "low": {"type": "number"},
        "close": {"type": "number"},
        "volume": {
            "type": "integer",
            "minimum": 0,
            "description": "ticks in the bar; absent when not known (bars stored before volume existed)",
        },
    },
    "additionalProperties": False,
}
CANDLES = {
    "type": "object",
    "required": [
        "symbol",
        "timeframe",
        "base_timeframe",
        "count",
        "candles",
        "last_closed",
        "has_more",
        "next",
        "available_from",
        "available_to",
        "timing",
    ],
    "properties": {
        "symbol": {"type": "string"},
        "timeframe": {"type": "integer"},
        "base_timeframe": {"type": "integer"},
        "count": {"type": "integer", "minimum": 0},
        "candles": {"type": "array", "items": CANDLE},
        "last_closed": {"type": "boolean", "description": "false while the newest bar is still forming"},
        "has_more": {"type": "boolean", "description": "the range holds bars this answer left out"},
        "next": {**NULLABLE_STRING, "description": "relative URL of the answer with those bars, or null"},
        "available_from": {**NULLABLE_INT, "description": "time of the oldest stored 1m bar"},
        "available_to": {**NULLABLE_INT, "description": "time of the newest 1m bar (forming included)"},
        "timing": TIMING,
    },
}
SYMBOLS = {
    "type": "object",
    "required": ["count", "symbols", "categories", "all_symbols"],
    "properties": {
        "count": {"type": "integer", "minimum": 0},
        "symbols": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["symbol", "name", "category", "precision"],
                "properties": {
                    "symbol": {"type": "string"},
                    "name": {"type": "string"},
                    "category": {"type": "string"},
                    "precision": {"type": "integer"},
                },
            },
        },
        "categories": {
            "type": "object",
            "additionalProperties": {"type": "array", "items": {"type": "string"}},
        },
        "all_symbols": {"type": "boolean"},
    },
}
LIVE_STATUS = {
    "type": "object",
    "required": ["live", "ws_url", "upstream", "server_time"],
    "properties": {
        "live": {"type": "boolean"},
        "ws_url": NULLABLE_STRING,
        "upstream": {"type": "object"},
        "server_time": {"type": "number"},
    },
}
VERIFY = {
    "type": "object",
    "required": ["ok", "open", "key_id", "name", "all_symbols", "symbols"],
    "properties": {
        "ok": {"type": "boolean"},
        "open": {"type": "boolean", "description": "true while no key exists (endpoints are open)"},
        "key_id": NULLABLE_STRING,
        "name": NULLABLE_STRING,
        "all_symbols": {"type": "boolean"},
        "symbols": {"type": "array", "items": {"type": "string"}},
    },
}
VERIFY_BODY = {
    "required": False,
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "properties": {"api_key": {"type": "string", "description": "twk_..."}},
            }
        }
    },
}
DOCS = {"type": "object", "required": ["name", "endpoints", "errors"]}

# -- TradingView UDF (udf_routes.py) ----------------------------------------------------------
UDF_ERROR = {
    "type": "object",
    "required": ["s", "errmsg", "error", "message"],
    "properties": {
        "s": {"const": "error"},
        "errmsg": {"type": "string"},
        "error": {"type": "string"},
        "message": {"type": "string"},
    },
}
UDF_CONFIG = {
    "type": "object",
    "required": ["supported_resolutions", "supports_search", "supports_group_request", "supports_time"],
    "properties": {
        "supported_resolutions": {"type": "array", "items": {"type": "string"}},
        "supports_search": {"const": True},
        "supports_group_request": {"const": False},
        "supports_marks": {"type": "boolean"},
        "supports_timescale_marks": {"type": "boolean"},
        "supports_time": {"type": "boolean"},
        "exchanges": {"type": "array", "items": {"type": "object"}},
        "symbols_types": {"type": "array", "items": {"type": "object"}},
    },
}
UDF_SYMBOL = {
    "type": "object",
    "required": [
        "name",
        "ticker",
        "description",
        "type",
        "session",
        "exchange",
        "listed_exchange",
        "timezone",
        "format",
        "pricescale",
        "minmov",
        "has_intraday",
        "supported_resolutions",
    ],
    "properties": {
        "name": {"type": "string"},
        "ticker": {"type": "string"},
        "pricescale": {"type": "integer", "minimum": 1},
        "minmov": {"type": "integer", "minimum": 1},
        "has_intraday": {"type": "boolean"},
        "supported_resolutions": {"type": "array", "items": {"type": "string"}},
    },
}
UDF_SEARCH = {
    "type": "array",
    "items": {
        "type": "object",
        "required": ["symbol", "full_name", "description", "exchange", "ticker", "type"],
        "properties": {
            k: {"type": "string"}
            for k in ("symbol", "full_name", "description", "exchange", "ticker", "type")
        },
    },
}
_COLUMN_NUMBERS = {"type": "array", "items": {"type": "number"}}
UDF_HISTORY = {
    "type": "object",
    "required": ["s"],
    "properties": {
        "s": {"enum": ["ok", "no_data"]},
        "t": {"type": "array", "items": {"type": "integer"}},
        "o": _COLUMN_NUMBERS,
        "h": _COLUMN_NUMBERS,
        "l": _COLUMN_NUMBERS,
        "c": _COLUMN_NUMBERS,
        "v": {"type": "array", "items": {"type": "integer", "minimum": 0}},
        "nextTime": {"type": "integer", "description": "with no_data: the newest bar before the range"},
    },
}

_RATE_HEADERS = {
    "X-RateLimit-Limit": {
        "description": "requests per minute allowed for this key",
        "schema": {"type": "integer"},
    },
    "X-RateLimit-Remaining": {"description": "requests left in this minute", "schema": {"type": "integer"}},
    "X-RateLimit-Reset": {"description": "seconds until the minute resets", "schema": {"type": "integer"}},
}
_RETRY_AFTER = {
    "Retry-After": {"required": True, "description": "seconds to wait", "schema": {"type": "integer"}}
}
_MEANING = {row["status"]: row["meaning"] for row in ERROR_TABLE}
_MEANING.update({304: "not modified: the answer still matches your If-None-Match (no body)"})


def responses(success: dict | None, *statuses: int, keyed: bool = True, error: dict = ERROR) -> dict:
    """FastAPI `responses=` for an operation: 200 with `success`, then each status with the error
    body (304: none), rate-limit headers on keyed answers and Retry-After where it is sent."""
    out: dict[int | str, dict] = {}
    if success is not None:
        out[200] = {"description": "OK", "content": {"application/json": {"schema": success}}}
    for status in statuses:
        entry: dict = {"description": _MEANING.get(status, "error")}
        if status != 304:
            entry["content"] = {"application/json": {"schema": error}}
        out[status] = entry
    for status, entry in out.items():
        headers = dict(_RATE_HEADERS) if keyed and status != 401 else {}
        if status in (429, 503):
            headers.update(_RETRY_AFTER)
        if headers:
            entry["headers"] = headers
    return out


SECURITY_SCHEMES = {
    "ApiKeyHeader": {
        "type": "apiKey",
        "in": "header",
        "name": "X-Api-Key",
        "description": "twk_... (recommended)",
    },
    "ApiKeyQuery": {
        "type": "apiKey",
        "in": "query",
        "name": "api_key",
        "description": "twk_... (meant for WebSocket URLs)",
    },
    "SessionCookie": {
        "type": "apiKey",
        "in": "cookie",
        "name": COOKIE_NAME,
        "description": "set by POST /api/auth/verify from the gate page",
    },
}
KEYED = [{"ApiKeyHeader": []}, {"ApiKeyQuery": []}, {"SessionCookie": []}]


def openapi_document(app: FastAPI, *, max_limit: int, required: dict[str, set[str]]) -> dict:
    """The document FastAPI generates, corrected (see the module docstring). `required` names,
    per path, the query parameters that must be present."""
    if app.openapi_schema:
        return app.openapi_schema
    spec = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
    for path, operations in spec.get("paths", {}).items():
        params = parameter_schemas(path, max_limit)
        for operation in operations.values():
            operation.get("responses", {}).pop("422", None)
            for parameter in operation.get("parameters", []):
                name = parameter["name"]
                if name in params and parameter["in"] == "query":
                    parameter["schema"] = dict(params[name])
                elif "anyOf" in parameter.get("schema", {}):  # `x | None`: the query has no null
                    parameter["schema"] = next(
                        s for s in parameter["schema"]["anyOf"] if s.get("type") != "null"
                    )
                if name in required.get(path, ()):
                    parameter["required"] = True
            auth = operation.get("x-auth", "none")
            operation["security"] = KEYED if auth in ("key", "optional") else []
    components = spec.setdefault("components", {})
    for unused in ("HTTPValidationError", "ValidationError"):
        components.get("schemas", {}).pop(unused, None)
    if not components.get("schemas"):
        components.pop("schemas", None)
    components["securitySchemes"] = SECURITY_SCHEMES
    app.openapi_schema = spec
    return spec
