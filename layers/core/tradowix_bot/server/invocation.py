"""What every Lambda invocation of ours runs inside: the ids on every log line, the time budget
for AWS calls, and the metrics flushed at the end (EMF, one line per dimension set)."""

from __future__ import annotations

import contextlib

from . import aws, logs
from .metrics import MetricsRecorder


@contextlib.contextmanager
def invocation(event: dict | None, context, metrics: MetricsRecorder | None = None, **keys):
    """`request_id` is Lambda's; `correlation_id` is API Gateway's request id (the stage's access
    log has it too), so one search finds a request across the access log and the function's."""
    request_context = (event or {}).get("requestContext") or {}
    with (
        logs.bind(
            request_id=getattr(context, "aws_request_id", None),
            correlation_id=request_context.get("requestId"),
            function=getattr(context, "function_name", None),
            **keys,
        ),
        aws.budget(context),
    ):
        try:
            yield
        finally:
            if metrics is not None and metrics.pending():
                metrics.flush()
