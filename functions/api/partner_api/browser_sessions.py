"""The browser's own sessions on the partner endpoints: signing out, and the owner's chart.

- `POST /api/auth/logout` clears the partner's HttpOnly session cookie (the page cannot).
- `POST /api/admin/chart-session` (admin session + CSRF token) gives the owner's browser a
  chart session that reads every symbol, so the owner opens the chart from the admin panel
  without making a key. It is the ordinary signed session cookie bound to a key id that no
  key can have (`keys.owner_session_id`), so the HTTP API, `/api/live/status` and the
  WebSocket admit it like a partner's; it ends with the admin session that opened it.
"""

from __future__ import annotations

import time

from fastapi import APIRouter, Request
from tradowix_bot.server.keys import owner_session_id
from tradowix_bot.server.sessions import COOKIE_NAME

from . import context
from .admin_routes import Writer
from .responses import JSONBody

# The sign-out belongs to the partner API (app.py); the owner's chart session to the admin API
# (admin_app.py, AdminFunction), whose role holds the admin secret and sessions.
router = APIRouter(include_in_schema=False)
admin_router = APIRouter(include_in_schema=False)
NO_STORE = {"Cache-Control": "no-store"}


def _secure(request: Request) -> bool:
    return request.headers.get("x-forwarded-proto", request.url.scheme) == "https"


@router.post("/api/auth/logout")
def sign_out(request: Request):
    response = JSONBody({"ok": True}, headers=NO_STORE)
    response.delete_cookie(COOKIE_NAME, path="/", httponly=True, samesite="lax", secure=_secure(request))
    return response


@admin_router.post("/api/admin/chart-session")
def owner_chart_session(request: Request, admin: Writer):
    now = int(time.time())
    expires_at = min(admin.expires_at, now + context.services.settings().cookie_max_age)
    token = context.services.signer().issue(owner_session_id(expires_at))
    response = JSONBody({"ok": True, "url": "/", "expires_at": expires_at}, headers=NO_STORE)
    response.set_cookie(
        COOKIE_NAME,
        token,
        max_age=max(1, expires_at - now),
        httponly=True,
        samesite="lax",
        secure=_secure(request),
        path="/",
    )
    return response
