"""Logs and metrics of the HTTP functions (partner API and admin API), in one place.

- Every log line of an invocation carries `request_id` (Lambda's) and `correlation_id` (API
  Gateway's request id, the one in the stage's access log) and the function name; AWS calls
  are budgeted within the invocation's remaining time (tradowix_bot.server.invocation).
- One access-log line per request (the query string redacted by the formatter).
- Metrics (tradowix_bot.server.metrics): Requests, Requests4xx, Requests5xx per function, and
  KeyAuthFailures (401 answers: missing, wrong, disabled key or expired session) for the partner
  API; flushed as EMF at the end of each invocation.
"""

from __future__ import annotations

import time

from fastapi import FastAPI, Request
from tradowix_bot.server.invocation import invocation
from tradowix_bot.server.metrics import recorder


def install(app: FastAPI, logger, service: str = "api") -> None:
    metrics = recorder(service)

    @app.middleware("http")
    async def access_log(request: Request, call_next):
        started = time.perf_counter()
        response = await call_next(request)
        status = response.status_code
        metrics.count("Requests")
        if 400 <= status < 500:
            metrics.count("Requests4xx")
        elif status >= 500:
            metrics.count("Requests5xx")
        if status == 401 and service == "api":
            metrics.count("KeyAuthFailures")
        logger.info(
            "request",
            extra={
                "method": request.method,
                "path": request.url.path,
                "query": request.url.query,  # redacted by the formatter (api_key=***)
                "status": status,
                "ms": round((time.perf_counter() - started) * 1000, 1),
            },
        )
        return response


def lambda_handler(inner, service: str = "api"):
    """The Lambda entry point around Mangum (tradowix_bot.server.invocation: ids, time budget, metrics)."""
    metrics = recorder(service)

    def handler(event: dict, context) -> dict:
        with invocation(event, context, metrics):
            return inner(event, context)

    return handler
