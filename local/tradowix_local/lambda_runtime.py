"""Load and invoke a template function's handler in this process, like a warm Lambda container:
the module is imported once (cold start) and reused for every invocation, both with the
credentials of the function's role (so the emulator checks its calls against its policy)."""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import os
import sys
import threading
import time
import uuid
from dataclasses import dataclass

from .template import Function


@dataclass
class LambdaContext:
    function_name: str
    memory_limit_in_mb: int
    timeout: int
    aws_request_id: str
    _deadline: float

    function_version: str = "$LATEST"
    log_group_name: str = "/aws/lambda/local"
    log_stream_name: str = "local"

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:us-east-1:123456789012:function:{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


class LocalFunction:
    def __init__(self, fn: Function, credentials: dict[str, str] | None = None, observer=None):
        self.fn = fn
        self.credentials = credentials or {}  # AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY of its role
        # observer(function, event, result, error, seconds): what Lambda's own metrics would count
        self.observer = observer
        self._handler = None
        self._lock = threading.Lock()

    def _role(self):
        from tradowix_bot.server import aws

        if not self.credentials:
            return contextlib.nullcontext()
        return aws.acting_as(self.credentials["AWS_ACCESS_KEY_ID"], self.credentials["AWS_SECRET_ACCESS_KEY"])

    def _load(self):
        if self._handler is None:
            with self._lock, self._role():  # init runs with the role's credentials, as on Lambda
                if self._handler is None:
                    os.environ.update(self.fn.environment)
                    if str(self.fn.code_dir) not in sys.path:
                        sys.path.insert(0, str(self.fn.code_dir))
                    module_name, _, attr = self.fn.handler.rpartition(".")
                    self._handler = getattr(importlib.import_module(module_name), attr)
        return self._handler

    def invoke(self, event: dict) -> dict:
        _ensure_event_loop()
        handler = self._load()
        _ensure_event_loop()
        context = LambdaContext(
            function_name=self.fn.logical_id,
            memory_limit_in_mb=self.fn.memory,
            timeout=self.fn.timeout,
            aws_request_id=str(uuid.uuid4()),
            _deadline=time.monotonic() + self.fn.timeout,
        )
        started = time.monotonic()
        result = error = None
        try:
            with self._role():
                result = handler(event, context)
            return result
        except Exception as exc:
            error = exc
            raise
        finally:
            if self.observer is not None:
                self.observer(self.fn.logical_id, event, result, error, time.monotonic() - started)


def _ensure_event_loop() -> None:
    """A Lambda container runs every invocation on one thread that has an event loop (Mangum
    relies on it); our gateways invoke from a pool of worker threads, so give each one its own."""
    try:
        asyncio.get_event_loop()
    except RuntimeError:
        asyncio.set_event_loop(asyncio.new_event_loop())
