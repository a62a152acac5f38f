"""One interface for every market-data source (ccxt-style: a unified base, thin adapters).

A source streams ticks of the symbols it is asked to watch into `events` and answers
history pages. The collector only ever talks to this interface, so a change upstream
touches one adapter.

    Tick(symbol, ts, price)     a raw tick; the collector validates it (bars.validate_tick)
    Linked(symbol, at)          the symbol's stream (re)started at `at`, emitted before any
                                tick of it: anything since the last stored bar must be
                                repaired from history, and the minute of the first valid
                                tick that follows saw only part of its ticks
    Unlinked(symbol, reason)    the stream stopped (link dropped); the forming bar is partial
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from ..candles import Bar
from ..symbols import SymbolInfo

MAX_HISTORY_MINUTES = 400  # the upstream's observed page limit


@dataclass(frozen=True)
class Tick:
    symbol: str
    price: object  # raw: validated by the collector
    timestamp_ms: object


@dataclass(frozen=True)
class Linked:
    symbol: str
    at: float


@dataclass(frozen=True)
class Unlinked:
    symbol: str
    reason: str


class SourceError(Exception):
    """The source cannot answer right now (link down, timeout); retry later."""


class AuthFailed(SourceError):
    """The session token was refused or never confirmed: retry only after minutes."""


@dataclass
class SourceStatus:
    """The link's state. `error_code` is what partners may see (a short code, never the
    upstream's text); `last_error` is the detail for the owner, scrubbed before it is stored."""

    connected: bool = False
    authenticated: bool = False
    last_error: str | None = None
    error_code: str | None = None
    rejected_frames: dict[str, int] = field(default_factory=dict)

    def fail(self, code: str, detail: str) -> None:
        self.error_code = code
        self.last_error = detail

    def clear_error(self) -> None:
        self.error_code = self.last_error = None

    def reject(self, reason: str) -> None:
        self.rejected_frames[reason] = self.rejected_frames.get(reason, 0) + 1


class Source:
    """Base class. Adapters override what they support."""

    name = "base"
    history_page_minutes = MAX_HISTORY_MINUTES

    def __init__(self) -> None:
        self.events: asyncio.Queue = asyncio.Queue(maxsize=100_000)
        self.status = SourceStatus()

    async def start(self) -> None:
        """Connect (if the source has a link). Raises AuthFailed/SourceError."""

    async def close(self) -> None:
        """Stop streaming and release connections."""

    async def instruments(self) -> list[SymbolInfo]:
        """The symbols this source offers, with categories."""
        return []

    async def watch(self, symbol: str) -> None:
        """Start streaming `symbol` into `events` (emits Linked before its first tick)."""

    async def unwatch(self, symbol: str) -> None:
        """Stop streaming `symbol`."""

    async def history(self, symbol: str, older_than: int, minutes: int) -> list[Bar]:
        """Up to `minutes` closed 1m bars with time < older_than (unix s), oldest first."""
        return []

    def held_times(self, symbol: str) -> list[int] | None:
        """The minutes of every bar the source holds for `symbol`, when it knows them (a file);
        None for a live upstream. Lets a repair say how many bars it skipped and why."""
        return None

    async def wait_for_new_token(self, seconds: float) -> None:
        """After AuthFailed: wait `seconds`, or less if the owner stores a new session token."""
        await asyncio.sleep(seconds)

    def emit(self, event) -> None:
        try:
            self.events.put_nowait(event)
        except asyncio.QueueFull:
            # The collector is far behind; dropping a tick is repaired from history later.
            self.status.reject("queue_full")
