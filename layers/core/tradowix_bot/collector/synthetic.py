"""The synthetic source: deterministic OTC-like ticks, emitted as (market) time passes.

Ticks and history come from `SyntheticMarket`, a pure function of (symbol, time), so the
live bars and the repaired history agree exactly and tests can compare against it.
"""

from __future__ import annotations

import asyncio
import contextlib

from ..candles import MINUTE, Bar
from ..symbols import DEFAULT_SYMBOLS, SymbolInfo
from .clock import Clock
from .sources import Linked, Source, Tick, Unlinked
from .synthetic_market import SyntheticMarket


class SyntheticSource(Source):
    name = "synthetic"
    history_page_minutes = 1440  # no upstream page limit; a day per page keeps backfill quick

    def __init__(self, clock: Clock, symbols: tuple[SymbolInfo, ...] = DEFAULT_SYMBOLS):
        super().__init__()
        self.clock = clock
        self.infos = tuple(symbols)
        self.market = SyntheticMarket(self.infos)
        self._watched: dict[str, float] = {}  # symbol → timestamp of the last emitted tick
        self._down_until: dict[str, float] = {}  # symbol → when its dropped link comes back
        self._current: dict[str, tuple[int, list]] = {}  # symbol → (minute, its ticks)
        self._task: asyncio.Task | None = None
        self._wake = asyncio.Event()

    async def start(self) -> None:
        self.status.connected = self.status.authenticated = True
        self._task = asyncio.create_task(self._emit_loop(), name="synthetic-ticks")

    async def close(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self.status.connected = False

    async def instruments(self) -> list[SymbolInfo]:
        return list(self.infos)

    async def watch(self, symbol: str) -> None:
        now = self.clock.now()
        self._watched[symbol] = now
        self.emit(Linked(symbol, now))
        self._wake.set()

    async def unwatch(self, symbol: str) -> None:
        self._watched.pop(symbol, None)
        self._down_until.pop(symbol, None)

    def drop_link(self, symbol: str, reconnect_after: float) -> None:
        """Fault injection: the symbol's link drops now and is back `reconnect_after` seconds
        later (Unlinked, then Linked); the ticks in between are lost, as on a real link."""
        if symbol in self._watched:
            self.emit(Unlinked(symbol, "link dropped"))
            self._down_until[symbol] = self.clock.now() + reconnect_after
            self._wake.set()

    async def history(self, symbol: str, older_than: int, minutes: int) -> list[Bar]:
        end = older_than - older_than % MINUTE
        # Generating days of ticks takes a while: keep the event loop (and live ticks) going.
        return await asyncio.to_thread(self.market.bars, symbol, end - minutes * MINUTE, end)

    def _minute_ticks(self, symbol: str, minute: int) -> list[tuple[float, float]]:
        # The emit loop asks for the same minute several times a second: generate it once.
        cached = self._current.get(symbol)
        if cached is None or cached[0] != minute:
            cached = (minute, self.market.minute_ticks(symbol, minute))
            self._current[symbol] = cached
        return cached[1]

    def _due_ticks(self, symbol: str, after: float, until: float) -> list[tuple[float, float]]:
        out = []
        minute = int(after) - int(after) % MINUTE
        while minute <= until:
            out.extend(tk for tk in self._minute_ticks(symbol, minute) if after < tk[0] <= until)
            minute += MINUTE
        return out

    async def _emit_loop(self) -> None:
        while True:
            now = self.clock.now()
            for symbol, back in list(self._down_until.items()):
                if now >= back:
                    del self._down_until[symbol]
                    self._watched[symbol] = back  # ticks from the moment the link is back
                    self.emit(Linked(symbol, back))
            for symbol, last in list(self._watched.items()):
                if symbol in self._down_until:
                    continue
                if now - last > 2 * MINUTE:  # fell far behind (paused process): history repairs it
                    last = now - MINUTE
                ticks = self._due_ticks(symbol, last, now)
                for ts, price in ticks:
                    self.emit(Tick(symbol, price, int(round(ts * 1000))))
                if ticks and symbol in self._watched:
                    self._watched[symbol] = ticks[-1][0]
            # Ticks come about every second of market time; wake a few times per tick.
            self._wake.clear()
            await self.clock.wait(self._wake, max(0.25, self.clock.slack(0.01)))
