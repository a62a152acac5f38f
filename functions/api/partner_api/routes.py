"""Partner endpoints. Each parses its input, calls the domain, shapes the answer."""

from __future__ import annotations

from typing import Annotated

import orjson
from fastapi import APIRouter, Depends, Query, Request, Response
from tradowix_bot.errors import BadRequest, Forbidden, UnsupportedMediaType
from tradowix_bot.server.sessions import COOKIE_NAME

from . import context, schemas
from .auth import Caller, caller, resolve
from .responses import JSONBody, versioned_json
from .schemas import StrictInt

router = APIRouter(prefix="/api")
KEY = {"x-auth": "key"}  # documented in /api/docs: needs a key once any key exists
OPTIONAL = {"x-auth": "optional"}

Who = Annotated[Caller, Depends(caller)]
Symbol = Annotated[str | None, Query(description="market symbol, e.g. BTCUSD-OTC")]
Timeframe = Annotated[
    StrictInt | None,
    Query(description="bar size in seconds: at least 60 and a multiple of 60 (default 60)"),
]


def _same_origin(request: Request) -> bool:
    """False for a request a browser sent from another site. Browsers send `Sec-Fetch-Site` and
    `Origin` on cross-origin POSTs (forms included); API clients send neither, or their own."""
    site = request.headers.get("sec-fetch-site")
    if site is not None and site not in ("same-origin", "none"):
        return False
    origin = request.headers.get("origin")
    if origin is None:
        return True
    scheme = request.headers.get("x-forwarded-proto", request.url.scheme)
    return origin.lower() == f"{scheme}://{request.headers.get('host', '')}".lower()


def _is_json(content_type: str | None) -> bool:
    media = (content_type or "").split(";")[0].strip().lower()
    return media == "application/json" or (media.startswith("application/") and media.endswith("+json"))


@router.post(
    "/auth/verify",
    openapi_extra={**OPTIONAL, "requestBody": schemas.VERIFY_BODY},
    summary="Validate an API key and set the browser cookie",
    responses=schemas.responses(schemas.VERIFY, 400, 401, 403, 415, 429, 503),
)
async def verify(request: Request):
    # Login CSRF: a page on another site must not sign a visitor in with the attacker's key
    # (a form or text/plain POST needs no preflight). Only a same-origin JSON request (or an
    # API client, which sends no Origin) reaches the cookie below.
    if not _same_origin(request):
        raise Forbidden(
            "cross-site sign-in refused: POST /api/auth/verify from the gate page of this site",
            code="cross_site_request",
        )
    body_key = None
    raw = await request.body()
    if raw:  # no body: the key is in a header, the query or the cookie (whitespace is not JSON)
        if not _is_json(request.headers.get("content-type")):
            raise UnsupportedMediaType(
                'send the key as JSON with Content-Type: application/json, e.g. {"api_key": "twk_..."}, '
                "or in the X-Api-Key header"
            )
        try:
            doc = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise BadRequest(
                'the request body must be JSON, e.g. {"api_key": "twk_..."}', code="invalid_json"
            ) from None
        if not isinstance(doc, dict):
            raise BadRequest("the request body must be a JSON object", code="invalid_json")
        body_key = doc.get("api_key")
        if "api_key" in doc and not isinstance(body_key, str):
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
            context.services.signer().issue(who.key.key_id),
            max_age=context.services.settings().cookie_max_age,
            httponly=True,
            samesite="lax",
            secure=secure,
            path="/",
        )
    return response


@router.get(
    "/symbols",
    openapi_extra=KEY,
    summary="Symbols this key may read, with categories",
    responses=schemas.responses(schemas.SYMBOLS, 401, 429, 503),
)
def symbols(who: Who):
    return JSONBody(context.services.market().symbols(who))


@router.get(
    "/candles",
    openapi_extra=KEY,
    summary="OHLC bars, resampled from stored 1m bars",
    responses=schemas.responses(schemas.CANDLES, 304, 400, 401, 403, 404, 429, 503),
)
def candles(
    request: Request,
    who: Who,
    symbol: Symbol = None,
    timeframe: Timeframe = None,
    limit: Annotated[
        StrictInt | None,
        Query(description="the last N bars of the range, after resampling; `next` pages back"),
    ] = None,
    start: Annotated[
        StrictInt | None, Query(description="unix seconds (not milliseconds), inclusive (extension)")
    ] = None,
    end: Annotated[
        StrictInt | None, Query(description="unix seconds (not milliseconds), exclusive (extension)")
    ] = None,
    page_size: Annotated[
        StrictInt | None,
        Query(description="the first N bars of the range, oldest first; `next` gives the following page"),
    ] = None,
) -> Response:
    market = context.services.market()
    answer = market.candles_answer(who, symbol, timeframe, limit, start, end, page_size)
    return versioned_json(request, answer.version, lambda: answer.body(market.encoded_days))


@router.get(
    "/timing",
    openapi_extra=KEY,
    summary="Bar open/close timing for countdowns",
    responses=schemas.responses(schemas.TIMING, 400, 401, 403, 429, 503),
)
def timing(who: Who, symbol: Symbol = None, timeframe: Timeframe = None):
    return JSONBody(context.services.market().timing(who, symbol, timeframe))


@router.get(
    "/live/status",
    openapi_extra=KEY,
    summary="Live flag, WebSocket URL, upstream connection flags",
    responses=schemas.responses(schemas.LIVE_STATUS, 401, 429, 503),
)
def live_status(who: Who):
    session_token = context.services.signer().issue(who.key.key_id) if who.key and not who.raw_key else None
    return JSONBody(context.services.market().live_status(who, session_token))
