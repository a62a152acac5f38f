"""The suite's one polling helper: wait for something a user would see, never for a fixed time.

    from polling import eventually, eventually_async

    key_refused = eventually(lambda: status() == 401, within=5, what="the disabled key is refused")
    bar = await eventually_async(lambda: last_bar(ws), within=10, what="a live bar")

`check` is called until it returns something truthy, and that value is returned. After `within`
seconds the test fails with `what` and the last value `check` returned. A check may also raise
AssertionError to mean "not yet" (the last one is shown on failure). `within` is a bound for a
broken product, not a speed requirement: keep it generous (a loaded CI machine is slow), and
never assert on how long something took in the suite (figures belong in tests/bench/).
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

__all__ = ["eventually", "eventually_async"]


def _failure(what: str, within: float, last: Any, error: AssertionError | None) -> str:
    detail = f"last check raised: {error}" if error is not None else f"last check returned: {last!r}"
    return f"{what}: not within {within} s ({detail})"


def eventually(check: Callable[[], Any], within: float, what: str, interval: float = 0.1) -> Any:
    """Polls `check()` until it returns a truthy value and returns that value; fails after `within` s."""
    deadline = time.monotonic() + within
    while True:
        error, result = None, None
        try:
            result = check()
        except AssertionError as exc:
            error = exc
        if error is None and result:
            return result
        if time.monotonic() >= deadline:
            pytest.fail(_failure(what, within, result, error))
        time.sleep(interval)


async def eventually_async(
    check: Callable[[], Any | Awaitable[Any]], within: float, what: str, interval: float = 0.1
) -> Any:
    """`eventually` for async tests: `check` may be sync or async; the loop keeps running between tries."""
    deadline = time.monotonic() + within
    while True:
        error, result = None, None
        try:
            result = check()
            if inspect.isawaitable(result):
                result = await result
        except AssertionError as exc:
            error = exc
        if error is None and result:
            return result
        if time.monotonic() >= deadline:
            pytest.fail(_failure(what, within, result, error))
        await asyncio.sleep(interval)
