"""The partner HTTP API: FastAPI behind API Gateway (HTTP API, payload 2.0) via Mangum.

Mangum runs the ASGI lifespan on every invocation, so it is off here; per-container work
happens lazily in `context` on first use instead.
"""

from __future__ import annotations

import time

import tradowix_bot
from fastapi import FastAPI, Request
from fastapi.middleware.gzip import GZipMiddleware
from mangum import Mangum

from . import admin_routes, browser_sessions, docs, errors, pages
from .responses import JSONBody
from .routes import router

logger = errors.logger

app = FastAPI(
    title="Tradowix chart API",
    version=tradowix_bot.__version__,
    description="Candles, symbols, timing and live status for partners. See /api/docs.",
    openapi_url="/api/openapi.json",
    docs_url=None,
    redoc_url=None,
)
app.add_middleware(GZipMiddleware, minimum_size=2048)
errors.install(app)
app.include_router(router)
app.include_router(admin_routes.router)
app.include_router(browser_sessions.router)
app.include_router(browser_sessions.admin_router)
app.include_router(pages.router)


@app.get(
    "/api/docs",
    openapi_extra={"x-auth": "none"},
    summary="This catalog: endpoints, params, WS messages, errors",
    responses={200: {"content": {"text/html": {}}, "description": "JSON; an HTML page for browsers"}},
)
def api_docs(request: Request):
    # A browser (Accept: text/html first) gets a readable page; every other client the JSON.
    if pages.prefers_html(request.headers.get("accept")):
        return pages.docs_page(docs.catalog(app))
    return JSONBody(docs.catalog(app), headers={"Vary": "Accept"})


@app.middleware("http")
async def access_log(request: Request, call_next):
    started = time.perf_counter()
    response = await call_next(request)
    logger.info(
        "request",
        extra={
            "method": request.method,
            "path": request.url.path,
            "query": request.url.query,  # redacted by the formatter (api_key=***)
            "status": response.status_code,
            "ms": round((time.perf_counter() - started) * 1000, 1),
        },
    )
    return response


handler = Mangum(app, lifespan="off")
