"""The browser pages (chart `/`, gate `/gate.html`, admin `/admin`) and their static assets.

Served by this function so one deployment has one origin: the gate's cookie and the API
share it with no CORS and no second bucket to deploy. HTML is `no-cache` (a new deploy
shows at once); assets are addressed by a content hash, `/static/<hash>/<path>`, and are
`immutable` for a year. HTML names assets with `{{static:<path>}}`, filled in here.
"""

from __future__ import annotations

import functools
import hashlib
import re
from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import Response

STATIC_DIR = Path(__file__).resolve().parent / "static"

_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".json": "application/json",
    ".map": "application/json",
}
IMMUTABLE = "public, max-age=31536000, immutable"
NO_CACHE = "no-cache"
# No inline script anywhere; the chart library injects a <style> element, hence 'unsafe-inline' for styles.
# connect-src allows ws:/wss: because the deployed WebSocket API has its own host.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "connect-src 'self' ws: wss:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)
PAGE_HEADERS = {
    "Cache-Control": NO_CACHE,
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}
_PLACEHOLDER = re.compile(r"\{\{static:([\w./-]+)\}\}")

router = APIRouter(include_in_schema=False)


@functools.lru_cache(maxsize=256)
def _digest(path: Path, mtime_ns: int) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:12]


def _asset_file(relative: str) -> Path | None:
    try:
        path = (STATIC_DIR / relative).resolve()
        if not path.is_relative_to(STATIC_DIR) or not path.is_file() or path.suffix == ".html":
            return None
    except (ValueError, OSError):  # a NUL byte, a name too long for the file system: no such file
        return None
    return path


def asset_url(relative: str) -> str:
    path = _asset_file(relative)
    version = _digest(path, path.stat().st_mtime_ns) if path else "missing"
    return f"/static/{version}/{relative}"


def _page(name: str) -> Response:
    html = (STATIC_DIR / name).read_text()
    html = _PLACEHOLDER.sub(lambda m: asset_url(m.group(1)), html)
    return Response(html, media_type=_TYPES[".html"], headers=PAGE_HEADERS)


@router.get("/")
def chart_page():
    return _page("index.html")


@router.get("/gate.html")
def gate_page():
    return _page("gate.html")


@router.get("/admin")
def admin_page():
    return _page("admin.html")


@router.get("/static/{version}/{relative:path}")
def static_asset(version: str, relative: str):
    path = _asset_file(relative)
    if path is None:
        return Response(
            f"no such file: {relative}\n", status_code=404, media_type="text/plain; charset=utf-8"
        )
    current = _digest(path, path.stat().st_mtime_ns)
    # An old page asking for an old version gets today's file, but not cached for a year.
    cache = IMMUTABLE if version == current else NO_CACHE
    headers = {"Cache-Control": cache, "X-Content-Type-Options": "nosniff", "ETag": f'"{current}"'}
    return Response(
        path.read_bytes(), media_type=_TYPES.get(path.suffix, "application/octet-stream"), headers=headers
    )
