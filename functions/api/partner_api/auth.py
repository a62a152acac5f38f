"""Who is calling an HTTP endpoint: the key from header, body, query or cookie (in the contract's
order), decided by the domain's authenticator (tradowix_bot/server/authn.py)."""

from __future__ import annotations

from fastapi import Request
from tradowix_bot.server.authn import Caller
from tradowix_bot.server.sessions import COOKIE_NAME

from . import context

__all__ = ["Caller", "caller", "resolve"]


def resolve(request: Request, body_key: str | None = None) -> Caller:
    """Who is calling; for a key, one request is counted against its rate limit (the answer's
    X-RateLimit-* headers come from `request.state.rate_limit`, see app.py)."""
    authn = context.services.authenticator()
    raw = request.headers.get("x-api-key") or body_key or request.query_params.get("api_key")
    who = authn.identify(raw, request.cookies.get(COOKIE_NAME))
    decision = authn.charge(who)
    if decision is not None:
        request.state.rate_limit = decision
        if not decision.allowed:
            raise decision.refuse()
    return who


def caller(request: Request) -> Caller:
    """FastAPI dependency for protected endpoints."""
    return resolve(request)
