"""One event loop factory for the fan-out poster and the local gateways."""

from __future__ import annotations

import asyncio


def new_event_loop() -> asyncio.AbstractEventLoop:
    """uvloop where installed (the [local] extra and the collector image bring it on Linux and
    macOS): measured 15-25 % less CPU per @connections post than asyncio's own loop."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()
