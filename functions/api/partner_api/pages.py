"""The browser pages (chart `/`, gate `/gate.html`, admin `/admin`, the API docs page) and their
static assets.

Served by this function so one deployment has one origin: the gate's cookie and the API
share it with no CORS and no second bucket to deploy. HTML is `no-cache` (a new deploy
shows at once); assets are addressed by a content hash, `/static/<hash>/<path>`, and are
`immutable` for a year. HTML names assets with `{{static:<path>}}`, filled in here.
"""

from __future__ import annotations

import functools
import hashlib
import html
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


# -- /api/docs for people ---------------------------------------------------------------------
def _quality(params: str) -> float:
    for param in params.split(";"):
        name, _, value = param.strip().partition("=")
        if name.strip().lower() == "q":
            try:
                return max(0.0, min(1.0, float(value)))
            except ValueError:
                return 0.0
    return 1.0


def prefers_html(accept: str | None) -> bool:
    """Whether an Accept header ranks text/html above JSON. The most specific range decides each
    type's weight (RFC 9110); ties go to JSON, so clients that send nothing or `*/*` (curl, httpx,
    the partner client) keep getting the catalog. A small parser: one header, no dependency."""
    weights: dict[str, float] = {}
    for part in (accept or "").split(","):
        media, _, params = part.partition(";")
        media = media.strip().lower()
        if media:
            weights[media] = max(weights.get(media, 0.0), _quality(params))

    def weight(kind: str, sub: str) -> float:
        for media in (f"{kind}/{sub}", f"{kind}/*", "*/*"):
            if media in weights:
                return weights[media]
        return 0.0

    return weight("text", "html") > weight("application", "json")


def with_html_page(responses: dict) -> dict:
    """OpenAPI `responses` of /api/docs: its 200 is also a text/html page (for browsers)."""
    ok = responses[200]
    ok["content"]["text/html"] = {"schema": {"type": "string"}}
    ok["description"] = "the JSON catalog; a browser (Accept: text/html first) gets it as a page"
    return responses


def _value(value) -> str:
    """Any catalog value as HTML: objects as definition lists, lists of objects as tables."""
    if isinstance(value, dict):
        rows = "".join(f"<dt>{html.escape(str(k))}</dt><dd>{_value(v)}</dd>" for k, v in value.items())
        return f'<dl class="kv">{rows}</dl>'
    if isinstance(value, list):
        if value and all(isinstance(v, dict) for v in value):
            columns = list(dict.fromkeys(k for v in value for k in v))
            head = "".join(f"<th>{html.escape(str(c))}</th>" for c in columns)
            body = "".join(
                "<tr>" + "".join(f"<td>{_value(v.get(c, ''))}</td>" for c in columns) + "</tr>" for v in value
            )
            return f'<div class="table-wrap" tabindex="0"><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'
        return "<ul>" + "".join(f"<li>{_value(v)}</li>" for v in value) + "</ul>" if value else "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return html.escape(str(value))


def _endpoints(endpoints: list[dict]) -> str:
    out = []
    for e in endpoints:
        method, path = html.escape(str(e.get("method", ""))), html.escape(str(e.get("path", "")))
        rest = {k: v for k, v in e.items() if k not in ("method", "path", "summary", "params")}
        out.append(
            f'<h3><span class="method">{method}</span> {path}</h3>'
            f"<p>{html.escape(str(e.get('summary', '')))}</p>{_value(rest)}"
            + (f"<p><b>Parameters</b></p>{_value(e['params'])}" if e.get("params") else "")
        )
    return "".join(out)


def docs_page(catalog: dict) -> Response:
    """The /api/docs catalog as a page a person can read (same data, same origin, same CSP)."""
    title = html.escape(f"{catalog.get('name', 'API')} {catalog.get('version', '')}".strip())
    sections = [(k, v) for k, v in catalog.items() if k not in ("name", "version")]
    nav = "".join(
        f'<li><a href="#{html.escape(k)}">{html.escape(k.capitalize())}</a></li>' for k, _ in sections
    )
    body = "".join(
        f'<section id="{html.escape(k)}"><h2>{html.escape(k.capitalize())}</h2>'
        + (_endpoints(v) if k == "endpoints" and isinstance(v, list) else _value(v))
        + "</section>"
        for k, v in sections
    )
    page = f"""<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>{title} · API docs</title>
  <link rel="icon" href="{asset_url("img/favicon.svg")}" type="image/svg+xml">
  <link rel="stylesheet" href="{asset_url("css/app.css")}">
</head>
<body>
  <main class="docs">
    <a class="brand" href="/"><span class="logo" aria-hidden="true">◆</span>Tradowix <span class="brand-sub">API docs</span></a>
    <h1>{title}</h1>
    <p class="lead">The partner API: every endpoint, its parameters, the WebSocket messages and the errors.
    Programs get this catalog as JSON from the same URL (send <code>Accept: application/json</code>, or no
    Accept header, as curl does); the OpenAPI document is at <a href="/api/openapi.json">/api/openapi.json</a>.</p>
    <nav aria-label="Sections"><ul>{nav}</ul></nav>
    {body}
  </main>
</body>
</html>
"""
    return Response(page, media_type=_TYPES[".html"], headers={**PAGE_HEADERS, "Vary": "Accept"})
