"""The partner HTTP API: FastAPI behind API Gateway (HTTP API, payload 2.0) via Mangum.

Mangum runs the ASGI lifespan on every invocation, so it is off here; per-container work
happens lazily in `context` on first use instead.
"""

from __future__ import annotations

import tradowix_bot
from fastapi import FastAPI, Request
from fastapi.middleware.gzip import GZipMiddleware
from mangum import Mangum

from . import browser_sessions, context, docs, errors, observability, pages, schemas, udf_routes
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
# Level 1, not Starlette's default 9: on 10,080 bars (846 KB) level 9 took 67-71 ms, level 1
# ~6 ms, for an answer ~30 % larger (still ~7x smaller than plain). See tests/bench/bench_api.py.
GZIP_LEVEL = 1
app.add_middleware(GZipMiddleware, minimum_size=2048, compresslevel=GZIP_LEVEL)
errors.install(app)
app.include_router(router)
app.include_router(udf_routes.router)
app.include_router(browser_sessions.router)
app.include_router(pages.router)

# Query parameters that must be present (FastAPI sees them as optional: the domain answers a
# missing one with its own error code).
REQUIRED_PARAMS = {
    "/api/candles": {"symbol"},
    "/api/timing": {"symbol"},
    "/udf/symbols": {"symbol"},
    "/udf/history": {"symbol", "resolution", "from", "to"},
}


def openapi() -> dict:
    return schemas.openapi_document(
        app, max_limit=context.services.settings().max_limit, required=REQUIRED_PARAMS
    )


app.openapi = openapi


@app.get(
    "/api/docs",
    openapi_extra={"x-auth": "none"},
    summary="This catalog: endpoints, params, WS messages, errors",
    responses=pages.with_html_page(schemas.responses(schemas.DOCS, keyed=False)),
)
def api_docs(request: Request):
    catalog = docs.catalog(app, rate_limit_per_minute=context.services.settings().rate_limit_per_minute)
    # A browser (Accept: text/html first) gets a readable page; every other client the JSON.
    if pages.prefers_html(request.headers.get("accept")):
        return pages.docs_page(catalog)
    return JSONBody(catalog, headers={"Vary": "Accept"})


@app.middleware("http")
async def rate_limit_headers(request: Request, call_next):
    response = await call_next(request)
    rate = getattr(request.state, "rate_limit", None)
    if rate is not None:  # every answer to a keyed request, errors and 304s included
        response.headers.update(rate.headers())
    return response


# The access log and the metrics (outermost: they see every answer as sent).
observability.install(app, logger, "api")
handler = observability.lambda_handler(Mangum(app, lifespan="off"), "api")
context.warm()  # clients during Lambda's init, not on the first request
