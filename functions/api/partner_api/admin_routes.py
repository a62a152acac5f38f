"""Admin endpoints under /api/admin/*: the owner's panel. Partner keys are refused here.

Reads need the admin session cookie; every write also needs the CSRF token (header
X-CSRF-Token) that login and GET /api/admin/session hand to the page.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field
from tradowix_bot.errors import Forbidden, Unauthorized
from tradowix_bot.server.admin import ADMIN_COOKIE_NAME, CSRF_HEADER, AdminSession, upstream_overview
from tradowix_bot.server.authn import OPEN

from . import context
from .responses import JSONBody

router = APIRouter(prefix="/api/admin", include_in_schema=False)
COOKIE_PATH = "/api/admin"
NO_STORE = {"Cache-Control": "no-store"}


def _json(data, status: int = 200) -> JSONBody:
    return JSONBody(data, status_code=status, headers=NO_STORE)


def _refuse_partner_keys(request: Request) -> None:
    if request.headers.get("x-api-key") or request.query_params.get("api_key"):
        raise Forbidden(
            "partner API keys cannot be used on admin endpoints; sign in with the admin secret",
            code="partner_key_refused",
        )


def admin_session(request: Request) -> AdminSession:
    _refuse_partner_keys(request)
    return context.services.admin_sessions().open(request.cookies.get(ADMIN_COOKIE_NAME))


def admin_write(request: Request, session: Annotated[AdminSession, Depends(admin_session)]) -> AdminSession:
    context.services.admin_sessions().require_csrf(session, request.headers.get(CSRF_HEADER))
    return session


Reader = Annotated[AdminSession, Depends(admin_session)]
Writer = Annotated[AdminSession, Depends(admin_write)]


class LoginBody(BaseModel):
    secret: str = Field(max_length=1000)


class NewKeyBody(BaseModel):
    name: str = Field(max_length=1000)
    symbols: list[str] | None = Field(default=None, max_length=1000)
    rate_limit: int | None = None  # requests per minute; None: the default (range checked by the domain)


class RateLimitBody(BaseModel):
    rate_limit: int | None  # requests per minute; null: back to the deployment's default


class SymbolsBody(BaseModel):
    symbols: list[str] | None = Field(max_length=1000)


class SessionTokenBody(BaseModel):
    token: str | None = None  # length is checked by the domain, with a message that says why


def _client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _session_answer(session: AdminSession) -> dict:
    return {"ok": True, "csrf_token": session.csrf_token, "expires_at": session.expires_at}


@router.post("/login")
def login(request: Request, body: LoginBody):
    _refuse_partner_keys(request)
    address = _client_address(request)
    throttle = context.services.login_throttle()
    throttle.claim(address)  # counted before the (slow) check: parallel guesses get no extra tries
    if not context.services.admin_secret().check(body.secret):
        raise Unauthorized("wrong admin secret", code="wrong_admin_secret")
    throttle.succeeded(address)
    sessions = context.services.admin_sessions()
    session = sessions.issue()
    response = _json(_session_answer(session))
    response.set_cookie(
        ADMIN_COOKIE_NAME,
        session.cookie,
        max_age=sessions.max_age,
        httponly=True,
        samesite="strict",
        secure=request.headers.get("x-forwarded-proto", request.url.scheme) == "https",
        path=COOKIE_PATH,
    )
    return response


@router.get("/session")
def current_session(session: Reader):
    return _json(_session_answer(session))


@router.post("/logout")
def logout(session: Writer):
    context.services.admin_sessions().revoke(session)  # the cookie stops working wherever it was saved
    response = _json({"ok": True})
    response.delete_cookie(ADMIN_COOKIE_NAME, path=COOKIE_PATH)
    return response


@router.get("/keys")
def list_keys(_: Reader):
    limiter = context.services.rate_limiter()
    # each key with what it used of its rate limit this minute (the panel shows it)
    keys = [
        {**r.public(), "usage": limiter.usage(r.key_id, r.rate_limit)} for r in context.services.keys().list()
    ]
    return _json({"keys": keys})


@router.post("/keys")
def create_key(_: Writer, body: NewKeyBody):
    record, raw = context.services.keys().create(body.name, body.symbols, body.rate_limit)
    return _json({"key": raw, "record": record.public()}, status=201)


@router.post("/keys/{key_id}/disable")
def disable_key(_: Writer, key_id: str):
    return _json({"record": context.services.keys().set_enabled(key_id, False).public()})


@router.post("/keys/{key_id}/enable")
def enable_key(_: Writer, key_id: str):
    return _json({"record": context.services.keys().set_enabled(key_id, True).public()})


@router.put("/keys/{key_id}/symbols")
def restrict_key(_: Writer, key_id: str, body: SymbolsBody):
    return _json({"record": context.services.keys().restrict(key_id, body.symbols).public()})


@router.put("/keys/{key_id}/rate-limit")
def set_key_rate_limit(_: Writer, key_id: str, body: RateLimitBody):
    return _json({"record": context.services.keys().set_rate_limit(key_id, body.rate_limit).public()})


@router.get("/rate-limit")
def default_rate_limit(_: Reader):
    return _json({"default_per_minute": context.services.settings().rate_limit_per_minute})


@router.delete("/keys/{key_id}")
def delete_key(_: Writer, key_id: str):
    context.services.keys().delete(key_id)
    return _json({"deleted": key_id})


@router.get("/symbols")
def all_symbols(_: Reader):
    return _json(context.services.market().symbols(OPEN))


@router.get("/session-token")
def session_token_status(_: Reader):
    return _json(context.services.session_token().status())


@router.put("/session-token")
def replace_session_token(_: Writer, body: SessionTokenBody):
    return _json(context.services.session_token().replace(body.token))


@router.get("/upstream")
def upstream(_: Reader):
    return _json(upstream_overview(context.services.state()))
