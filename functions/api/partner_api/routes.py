"""Partner endpoints. Each parses its input, calls the domain, shapes the answer."""

from __future__ import annotations

from typing import Annotated

import orjson
from fastapi import APIRouter, Depends, Query, Request
from tradowix_bot.errors import BadRequest
from tradowix_bot.sessions import COOKIE_NAME

from . import context
from .auth import Caller, caller, resolve
from .responses import JSONBody, conditional_json

router = APIRouter(prefix="/api")
KEY = {"x-auth": "key"}  # documented in /api/docs: needs a key once any key exists
OPEN = {"x-auth": "none"}
OPTIONAL = {"x-auth": "optional"}

Who = Annotated[Caller, Depends(caller)]
Symbol = Annotated[str | None, Query(description="market symbol, e.g. BTCUSD-OTC", max_length=200)]
Timeframe = Annotated[
    int | None, Query(description="bar size in seconds: at least 60 and a multiple of 60 (default 60)")
]


@router.post("/auth/verify", openapi_extra=OPTIONAL, summary="Validate an API key and set the browser cookie")
async def verify(request: Request):
    body_key = None
    raw = await request.body()
    if raw.strip():
        try:
            doc = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise BadRequest(
                'the request body must be JSON, e.g. {"api_key": "twk_..."}', code="invalid_json"
            ) from None
        if not isinstance(doc, dict):
            raise BadRequest("the request body must be a JSON object", code="invalid_json")
        body_key = doc.get("api_key")
        if body_key is not None and not isinstance(body_key, str):
            raise BadRequest("api_key must be a string", code="invalid_json")
    who = resolve(request, body_key)
    if who.key is None:
        return JSONBody(
            {"ok": True, "open": True, "key_id": None, "name": None, "all_symbols": True, "symbols": []}
        )
    response = JSONBody(
        {
            "ok": True,
            "open": False,
            "key_id": who.key.key_id,
            "name": who.key.name,
            "all_symbols": who.key.all_symbols,
            "symbols": list(who.key.symbols or []),
        }
    )
    if who.raw_key:
        secure = request.headers.get("x-forwarded-proto", request.url.scheme) == "https"
        response.set_cookie(
            COOKIE_NAME,
            context.signer().issue(who.key.key_id),
            max_age=context.settings().cookie_max_age,
            httponly=True,
            samesite="lax",
            secure=secure,
            path="/",
        )
    return response


@router.get("/symbols", openapi_extra=KEY, summary="Symbols this key may read, with categories")
def symbols(who: Who):
    return JSONBody(context.market().symbols(who.key))


@router.get("/candles", openapi_extra=KEY, summary="OHLC bars, resampled from stored 1m bars")
def candles(
    request: Request,
    who: Who,
    symbol: Symbol = None,
    timeframe: Timeframe = None,
    limit: Annotated[int | None, Query(description="the last N bars after resampling")] = None,
    start: Annotated[int | None, Query(description="unix seconds, inclusive (extension)")] = None,
    end: Annotated[int | None, Query(description="unix seconds, exclusive (extension)")] = None,
):
    data = context.market().candles(who.key, symbol, timeframe, limit, start, end)
    return conditional_json(request, data, volatile="timing")


@router.get("/timing", openapi_extra=KEY, summary="Bar open/close timing for countdowns")
def timing(who: Who, symbol: Symbol = None, timeframe: Timeframe = None):
    return JSONBody(context.market().timing(who.key, symbol, timeframe))


@router.get("/live/status", openapi_extra=KEY, summary="Live flag, WebSocket URL, upstream connection flags")
def live_status(who: Who):
    return JSONBody(context.market().live_status(who.key, who.raw_key))
