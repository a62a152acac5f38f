"""Typed domain errors. Each carries the short code and HTTP status of the partner contract;
the API maps them to responses in one place (functions/api/errors.py)."""

from __future__ import annotations


class DomainError(Exception):
    status = 500
    code = "internal_error"

    def __init__(self, message: str, *, code: str | None = None):
        super().__init__(message)
        self.message = message
        if code:
            self.code = code


class BadRequest(DomainError):
    status = 400
    code = "bad_request"


class Unauthorized(DomainError):
    status = 401
    code = "unauthorized"


class Forbidden(DomainError):
    status = 403
    code = "forbidden"


class NotFound(DomainError):
    status = 404
    code = "not_found"


class UnsupportedMediaType(DomainError):
    status = 415
    code = "unsupported_media_type"


class Conflict(DomainError):
    status = 409
    code = "conflict"


class RateLimited(DomainError):
    status = 429
    code = "rate_limited"

    def __init__(self, message: str, *, retry_after: int = 1, code: str | None = None):
        super().__init__(message, code=code)
        self.retry_after = retry_after


class Unavailable(DomainError):
    """Storage or upstream cannot be reached right now; nothing was half-written."""

    status = 503
    code = "unavailable"


class MalformedCandles(DomainError):
    """A candle file or payload that cannot be imported; names the file and line."""

    status = 400
    code = "malformed_candles"
