"""The partner HTTP API: FastAPI behind API Gateway (HTTP API, payload 2.0) via Mangum.

Mangum runs the ASGI lifespan on every invocation, so it is off here; per-container work
happens lazily in `context` on first use instead.
"""

from __future__ import annotations

import tradowix_bot
from fastapi import FastAPI
from fastapi.middleware.gzip import GZipMiddleware
from mangum import Mangum

from . import context, docs, errors, observability, pages
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
app.include_router(pages.router)


@app.get(
    "/api/docs",
    openapi_extra={"x-auth": "none"},
    summary="This catalog: endpoints, params, WS messages, errors",
)
def api_docs():
    return JSONBody(docs.catalog(app))


observability.install(app, logger, "api")
handler = observability.lambda_handler(Mangum(app, lifespan="off"), "api")
context.warm()  # clients during Lambda's init, not on the first request
