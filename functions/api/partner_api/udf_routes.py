"""TradingView UDF datafeed under /udf/ (tradowix_bot/server/udf.py): keyed like the rest of the API.

Point TradingView's `UDFCompatibleDatafeed` at `<ApiUrl>/udf` with the key in a header
(its Requester takes headers) or, on this origin, the gate page's session cookie."""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import PlainTextResponse

from . import context, schemas
from .responses import JSONBody
from .routes import KEY, Who
from .schemas import StrictInt

router = APIRouter(prefix="/udf")
UdfSymbol = Annotated[str | None, Query(description="ticker, e.g. BTCUSD-OTC (or Tradowix:BTCUSD-OTC)")]


@router.get(
    "/config",
    openapi_extra=KEY,
    summary="UDF: datafeed configuration",
    responses=schemas.responses(schemas.UDF_CONFIG, 401, 429, 503, error=schemas.UDF_ERROR),
)
def config(who: Who):
    return JSONBody(context.services.datafeed().config(who))


@router.get(
    "/symbols",
    openapi_extra=KEY,
    summary="UDF: symbol information (LibrarySymbolInfo)",
    responses=schemas.responses(schemas.UDF_SYMBOL, 400, 401, 403, 404, 429, 503, error=schemas.UDF_ERROR),
)
def symbols(who: Who, symbol: UdfSymbol = None):
    return JSONBody(context.services.datafeed().symbol(who, symbol))


@router.get(
    "/search",
    openapi_extra=KEY,
    summary="UDF: symbol search",
    responses=schemas.responses(schemas.UDF_SEARCH, 400, 401, 429, 503, error=schemas.UDF_ERROR),
)
def search(
    who: Who,
    query: Annotated[str, Query(description="text the user typed", max_length=100)] = "",
    type: Annotated[str, Query(description="symbol type (category), empty for all", max_length=100)] = "",
    exchange: Annotated[str, Query(description="exchange, empty for all", max_length=100)] = "",
    limit: Annotated[StrictInt | None, Query(description="at most this many results")] = None,
):
    if limit is not None and not 1 <= limit <= 100:
        from tradowix_bot.errors import BadRequest

        raise BadRequest(f"limit must be between 1 and 100 (got {limit})", code="invalid_limit")
    return JSONBody(context.services.datafeed().search(who, query, type, exchange, limit))


@router.get(
    "/history",
    openapi_extra=KEY,
    summary="UDF: bars of [from, to) in columns; countback wins over from",
    responses=schemas.responses(schemas.UDF_HISTORY, 400, 401, 403, 404, 429, 503, error=schemas.UDF_ERROR),
)
def history(
    who: Who,
    symbol: UdfSymbol = None,
    resolution: Annotated[
        str | None, Query(description="1, 2, 3, 5, 10, 15, 30, 60, 120, 240 (minutes), 1D")
    ] = None,
    start: Annotated[StrictInt | None, Query(alias="from", description="unix seconds, inclusive")] = None,
    end: Annotated[StrictInt | None, Query(alias="to", description="unix seconds, exclusive")] = None,
    countback: Annotated[StrictInt | None, Query(description="the last N bars before `to`")] = None,
):
    return JSONBody(context.services.datafeed().history(who, symbol, resolution, start, end, countback))


@router.get(
    "/time",
    openapi_extra=KEY,
    summary="UDF: server time, unix seconds, plain text",
    response_class=PlainTextResponse,
    responses=schemas.responses(None, 401, 429, 503, error=schemas.UDF_ERROR)
    | {
        200: {
            "description": "OK",
            "content": {"text/plain": {"schema": {"type": "string", "pattern": "^[0-9]+$"}}},
        }
    },
)
def server_time(who: Who):
    return PlainTextResponse(str(int(time.time())))
