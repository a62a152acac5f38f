"""Structured JSON logs (Powertools Logger) with secrets scrubbed from every record, and the
ids of the work in progress on every line.

`bind(request_id=..., correlation_id=...)` puts keys on every line logged in its context by
any of our loggers, whatever their service name: the Lambda wrappers bind the invocation's
request id and API Gateway's request id (the id in the access logs and the `X-Request-Id`
answer header), the WebSocket handler binds the connection id too, the collector binds its
run id. Context variables follow threads started with the context (FastAPI's threadpool) and
asyncio tasks, and never leak between concurrent invocations.
"""

from __future__ import annotations

import contextlib
import contextvars

from aws_lambda_powertools import Logger
from aws_lambda_powertools.logging.formatter import LambdaPowertoolsFormatter

from .redact import redact

_bound: contextvars.ContextVar[dict] = contextvars.ContextVar("tradowix_log_context", default={})  # noqa: B039 - never mutated
_process: dict = {}  # keys of the whole process (every thread): the collector's run id


class RedactingFormatter(LambdaPowertoolsFormatter):
    """Redacts the final serialized line, so message, extras and exceptions are all covered."""

    def serialize(self, log: dict) -> str:
        bound = {**_process, **_bound.get()}
        if bound:
            log = {**log, **{k: v for k, v in bound.items() if k not in log}}
        return redact(super().serialize(log))


def get_logger(service: str) -> Logger:
    return Logger(service=service, logger_formatter=RedactingFormatter())


@contextlib.contextmanager
def bind(**keys):
    """Add these keys (None values are left out) to every log line in this context."""
    token = _bound.set({**_bound.get(), **{k: v for k, v in keys.items() if v is not None}})
    try:
        yield
    finally:
        _bound.reset(token)


def bind_process(**keys) -> None:
    """For a long-running process (the collector): keys on every line from now on, from every
    thread (threads do not inherit context variables)."""
    _process.update({k: v for k, v in keys.items() if v is not None})


def bound() -> dict:
    return dict(_bound.get())
