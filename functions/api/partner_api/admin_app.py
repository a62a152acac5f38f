"""The owner's admin API (/api/admin/*) as a function of its own: AdminFunction in template.yaml.

Why a second function: its role may create and delete keys, read the admin secret and write the
Tradowix session token. The partner API faces the internet and serves any key holder; with
these rights in its role, any flaw there would be a way to mint keys or read the owner's
token. Same code package, same error mapping, same logs; only the routes and the role differ.
"""

from __future__ import annotations

import tradowix_bot
from fastapi import FastAPI
from mangum import Mangum

from . import admin_routes, browser_sessions, context, errors, health_routes, observability

app = FastAPI(
    title="Tradowix admin API",
    version=tradowix_bot.__version__,
    openapi_url=None,
    docs_url=None,
    redoc_url=None,
)
errors.install(app)
app.include_router(admin_routes.router)
app.include_router(health_routes.router)
app.include_router(browser_sessions.admin_router)
observability.install(app, errors.logger, "admin")

handler = observability.lambda_handler(Mangum(app, lifespan="off"), "admin")
context.services.settings()  # validated at init: a missing bucket or table stops here, named
