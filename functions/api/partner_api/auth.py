"""Who is calling: resolves the API key from header, query or cookie (in the contract's order)."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request
from tradowix_bot.errors import Unauthorized
from tradowix_bot.keys import KeyRecord
from tradowix_bot.sessions import COOKIE_NAME

from . import context


@dataclass(frozen=True)
class Caller:
    key: KeyRecord | None  # None: open mode (no key exists yet)
    raw_key: str | None = None  # only when the request itself carried the key


def resolve(request: Request, body_key: str | None = None) -> Caller:
    """Who is calling; for a key, one request is counted against its rate limit (the answer's
    X-RateLimit-* headers come from `request.state.rate_limit`, see app.py)."""
    registry = context.keys()
    if not registry.any_keys():
        return Caller(None)
    raw = request.headers.get("x-api-key") or body_key or request.query_params.get("api_key")
    if raw:
        who = Caller(registry.authenticate(raw), raw)
    else:
        token = request.cookies.get(COOKIE_NAME)
        if not token:
            raise Unauthorized(
                "an API key is required: send it in the X-Api-Key header (or sign in at /gate.html)",
                code="missing_key",
            )
        who = Caller(registry.authenticate_id(context.signer().key_id(token)))
    decision = context.rate_limiter().hit(who.key.key_id, who.key.rate_limit)
    if decision is not None:
        request.state.rate_limit = decision
        if not decision.allowed:
            raise decision.refuse()
    return who


def caller(request: Request) -> Caller:
    """FastAPI dependency for protected endpoints."""
    return resolve(request)
