"""Every error leaves the API here, as `{"error": <short_code>, "message": <sentence>}` (on the
TradingView datafeed under /udf/, also as UDF's `{"s": "error", "errmsg": ...}`)."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from tradowix_bot.errors import DomainError, RateLimited, Unavailable
from tradowix_bot.server.logs import get_logger

from .responses import JSONBody

logger = get_logger("tradowix-api")

# The contract's table, published by /api/docs.
ERROR_TABLE = [
    {"status": 400, "meaning": "bad query: missing symbol, bad timeframe, bad limit, bad range"},
    {"status": 401, "meaning": "missing or invalid API key (or expired session cookie)"},
    {"status": 403, "meaning": "the key cannot access this symbol (or a cross-site sign-in)"},
    {"status": 404, "meaning": "no stored data for this symbol (run the archive, or wait for live history)"},
    {"status": 405, "meaning": "method not allowed on this endpoint; the Allow header lists the methods"},
    {"status": 415, "meaning": "the request body must be JSON (Content-Type: application/json)"},
    {"status": 429, "meaning": "rate limit for this key; see the Retry-After header"},
    {"status": 503, "meaning": "storage or upstream temporarily unavailable; nothing was half-written"},
]
UDF_PREFIX = "/udf/"


def error_response(
    status: int, code: str, message: str, headers: dict | None = None, *, udf: bool = False
) -> JSONBody:
    body = {"error": code, "message": message}
    if udf:  # TradingView's UDF adapter reads `s` and `errmsg` whatever the HTTP status
        body = {"s": "error", "errmsg": message, **body}
    return JSONBody(body, status_code=status, headers=headers)


def _is_udf(request: Request) -> bool:
    return request.url.path.startswith(UDF_PREFIX)


def install(app: FastAPI) -> None:
    @app.exception_handler(DomainError)
    async def domain_error(request: Request, exc: DomainError):
        headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, RateLimited) else None
        if isinstance(exc, Unavailable):
            headers = {"Retry-After": "5"}
            logger.warning("dependency unavailable", extra={"reason": repr(exc.__cause__)})
        return error_response(exc.status, exc.code, exc.message, headers, udf=_is_udf(request))

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError):
        first = exc.errors()[0] if exc.errors() else {}
        field = first.get("loc", ["query"])[-1]
        reason = str(first.get("msg", "invalid value")).removeprefix("Value error, ")
        return error_response(400, f"invalid_{field}", f"{field}: {reason}", udf=_is_udf(request))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        codes = {404: "no_such_endpoint", 405: "method_not_allowed"}
        sentences = {
            404: "no such endpoint; GET /api/docs lists them all",
            405: "this method is not allowed on this endpoint; GET /api/docs lists them all",
        }
        message = sentences.get(exc.status_code, str(exc.detail))
        # 405 carries Allow (RFC 9110): Starlette puts it on the exception.
        return error_response(
            exc.status_code,
            codes.get(exc.status_code, "error"),
            message,
            dict(exc.headers) if exc.headers else None,
            udf=_is_udf(request),
        )

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception):
        logger.exception("unhandled error")
        return error_response(
            500, "internal_error", "unexpected server error; it has been logged", udf=_is_udf(request)
        )
