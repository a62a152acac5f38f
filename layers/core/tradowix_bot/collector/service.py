"""The Collector: one process that keeps every symbol's 1m history complete and fresh.

    source ──Tick──► validate ──► MinuteBars ──closed──► BarWriter ──► S3 (one PUT per minute)
                                       └──forming──► BarWriter ──► DynamoDB forming record
                                       └──────────► sinks.on_bar(symbol, bar, closed)

- Sinks (e.g. the live WebSocket publisher) get every forming update (closed=False) and
  every close (closed=True); a close may come again, amended, when a straggler tick of that
  minute arrives before any tick of the next one.

- Exactly one writer per symbol: a DynamoDB lease (conditional write with expiry) is held
  and renewed for every symbol this collector writes; a symbol whose lease belongs to
  another live collector is neither streamed nor written, and is taken over once that
  lease expires.
- Gap repair: when a symbol's stream (re)starts (Linked), the collector pages the source's
  history back to the last stored bar (or `backfill_days` on an empty store) and writes what
  is missing. The minute of the first valid tick after Linked is partial (an upstream may get
  round to a subscription a minute late, and garbage may come first), and so is a bar the
  clock closed just before the link dropped (its tail may have died with the link); once
  such a minute is over it is taken from history too. Partial bars are only used where
  the history has nothing for that minute; every minute after the first tick's is written
  from the ticks as it closes. Stopping is like a dropped link: a bar the clock closed that
  no later tick proved whole is checked against history before the collector exits.
- Retention on emulators without S3 lifecycle: the collector deletes old day objects itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import socket
import time
import uuid
from collections.abc import Iterable

from ..candles import MINUTE, Bar
from ..errors import Unavailable
from ..logs import get_logger
from ..state import StateStore
from ..store import DAY, CandleStore, day_of, day_start
from .bars import MAX_TICK_AGE, BadTick, MinuteBars, validate_tick
from .clock import Clock
from .sources import AuthFailed, Linked, Source, SourceError, Tick, TokenMissing, Unlinked
from .writer import BarWriter

log = get_logger("collector")
NEVER = math.inf


def _valid_bar(b) -> bool:
    try:
        t, o, h, lo, c = b
        return (
            t % MINUTE == 0
            and all(isinstance(x, int | float) and math.isfinite(x) and x > 0 for x in (o, h, lo, c))
            and h >= max(o, c, lo)
            and lo <= min(o, c)
        )
    except (TypeError, ValueError):
        return False


class Collector:
    def __init__(
        self,
        source: Source,
        store: CandleStore,
        state: StateStore,
        *,
        symbols: Iterable[str] | None = None,
        clock: Clock | None = None,
        sinks: Iterable = (),
        owner: str | None = None,
        lease_seconds: float = 30.0,
        backfill_days: float = 7,
        retention_days: float = 3,
        build_retention_days: float = 7,
        trim: bool = False,
        close_grace: float = 0.5,
        forming_interval: float = 1.0,
        status_interval: float = 5.0,
        auth_backoff: float = 300.0,
    ):
        self.source = source
        self.store = store
        self.state = state
        self.symbols = list(symbols) if symbols else None
        self.clock = clock or Clock()
        self.sinks = list(sinks)
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.lease_seconds = lease_seconds
        self.backfill_days = backfill_days
        self.retention_days = retention_days
        self.build_retention_days = build_retention_days
        self.trim = trim
        self.close_grace = close_grace
        self.status_interval = status_interval
        self.auth_backoff = auth_backoff
        self.writer = BarWriter(store, state, forming_interval=forming_interval)
        self.builders: dict[str, MinuteBars] = {}
        self.leases: dict[str, float] = {}  # symbol → wall time our lease runs out
        self.complete_from: dict[str, float] = {}  # first minute seen whole since (re)link
        self.awaiting_first_tick: set[str] = set()  # linked symbols whose stream has not started
        self.partial: dict[str, dict[int, Bar]] = {}  # bars of minutes seen only in part
        # symbol → (market time the repair may run, end of the range to repair)
        self.repair_due: dict[str, tuple[float, int]] = {}
        self._first_repair_done: set[str] = set()
        self.last_tick: dict[str, float] = {}
        self.rejected: dict[str, int] = {}
        self.repairs = 0
        self.backfilled = asyncio.Event()  # set once every leased symbol's first repair is done
        self._repairing: set[str] = set()
        self._repair_retry: dict[str, float] = {}
        self._started_at = self.clock.now()
        self.error: BaseException | None = None
        # A compressed clock must not turn a few wall seconds of delay into "stale" ticks.
        self._max_tick_age = max(MAX_TICK_AGE, 10 * self.clock.speed)
        self._last_trim = 0.0

    # -- public ----------------------------------------------------------------------------
    async def run(self, stop: asyncio.Event | None = None) -> None:
        stop = stop or asyncio.Event()
        writer = asyncio.create_task(self.writer.run(stop), name="writer")
        tasks: list[asyncio.Task] = []
        try:
            if not await self._start_source(stop):
                return
            while self.symbols is None and not stop.is_set():
                try:
                    infos = await self.source.instruments()
                    if infos:
                        await asyncio.to_thread(self.store.write_catalog, infos)
                    self.symbols = [i.symbol for i in infos]
                except (SourceError, Unavailable) as exc:
                    log.warning("no instrument list yet; retrying", extra={"error": str(exc)})
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), timeout=10)
            if stop.is_set():
                return
            log.info("collector started", extra={"source": self.source.name, "symbols": len(self.symbols)})
            tasks = [
                asyncio.create_task(self._lease_loop(stop), name="leases"),
                asyncio.create_task(self._consume(), name="ticks"),
                asyncio.create_task(self._tick_loop(stop), name="clock"),
            ]
            for task in [*tasks, writer]:
                task.add_done_callback(lambda t: self._crashed(t, stop))
            await stop.wait()
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            stop.set()
            with contextlib.suppress(asyncio.CancelledError):
                await writer
            await self._check_unproven()
            await self.source.close()
            if not await self.writer.drain():
                log.error("stopping with unwritten bars", extra={"bars": self.writer.backlog})
            for symbol in list(self.leases):
                with contextlib.suppress(Unavailable):
                    await asyncio.to_thread(self.state.release_lease, symbol, self.owner)
            self.writer.close()

    async def _check_unproven(self, timeout: float = 5.0) -> None:
        """Stopping drops every link: a bar the clock closed that no later tick proved whole (its
        tail may still have been in flight) is checked against history, as after a dropped link.
        Bounded, so an upstream that does not answer cannot hold the stop."""

        async def check(symbol: str, bar: Bar) -> None:
            for b in await self.source.history(symbol, bar.time + MINUTE, 1):
                if _valid_bar(b) and int(b[0]) == bar.time:
                    self.writer.closed(symbol, [tuple(b)])

        jobs = [
            check(symbol, builder.unproven_closed)
            for symbol, builder in self.builders.items()
            if symbol in self.leases and builder.unproven_closed is not None
        ]
        if jobs:
            try:
                await asyncio.wait_for(asyncio.gather(*jobs), timeout)
            except (SourceError, Unavailable, TimeoutError) as exc:
                log.warning("last closed bars not checked against history", extra={"error": str(exc)})

    def _crashed(self, task: asyncio.Task, stop: asyncio.Event) -> None:
        """A loop that dies is a bug: stop loudly (the supervisor restarts us) instead of limping."""
        if not task.cancelled() and task.exception() is not None:
            self.error = task.exception()
            log.error("collector loop crashed", extra={"task": task.get_name()}, exc_info=task.exception())
            stop.set()

    def status_record(self) -> dict:
        now = self.clock.now()
        st = self.source.status
        return {
            "source": self.source.name,
            "connected": st.connected,
            "authenticated": st.authenticated,
            "last_error": st.last_error,
            "owner": self.owner,
            "symbols": {
                s: {
                    "last_tick_age": round(now - self.last_tick[s], 1) if s in self.last_tick else None,
                }
                for s in sorted(self.leases)
            },
            "rejected": {**st.rejected_frames, **self.rejected},
            "unwritten_bars": self.writer.backlog,
            "backfilled": self.backfilled.is_set(),
        }

    # -- source ----------------------------------------------------------------------------
    async def _start_source(self, stop: asyncio.Event) -> bool:
        backoff = 1.0
        while not stop.is_set():
            try:
                await self.source.start()
                return True
            except AuthFailed as exc:
                wait = self.auth_backoff
                self.source.status.last_error = str(exc)
                if isinstance(exc, TokenMissing):  # a fresh deployment: status says so, no exit
                    log.warning("no session token stored yet; waiting for one", extra={"retry_in": wait})
                else:
                    log.error("upstream refused the session token; backing off", extra={"retry_in": wait})
                pause = self.source.wait_for_new_token(wait)  # or less: a new token is stored
            except SourceError as exc:
                wait = backoff
                backoff = min(backoff * 2, self.auth_backoff)
                self.source.status.last_error = str(exc)
                log.warning("upstream unavailable; backing off", extra={"error": str(exc), "retry_in": wait})
                pause = asyncio.sleep(wait)
            self.writer.set_status(self.status_record())
            stopped = asyncio.ensure_future(stop.wait())
            paused = asyncio.ensure_future(pause)
            await asyncio.wait({stopped, paused}, return_when=asyncio.FIRST_COMPLETED)
            for waiter in (stopped, paused):
                waiter.cancel()
        return False

    # -- leases ----------------------------------------------------------------------------
    async def _lease_loop(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            for symbol in self.symbols or []:
                await self._lease(symbol)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self.lease_seconds / 3)

    async def _lease(self, symbol: str) -> None:
        now = time.time()
        try:
            ok = await asyncio.to_thread(
                self.state.acquire_lease, symbol, self.owner, self.lease_seconds, now
            )
        except Unavailable as exc:
            # Keep writing while our lease is surely still ours; stop before it can run out.
            if symbol in self.leases and time.time() > self.leases[symbol] - self.lease_seconds / 6:
                log.warning("lease renewal failed; giving up the symbol", extra={"symbol": symbol})
                await self._lose(symbol)
            else:
                log.warning("lease renewal failed; retrying", extra={"symbol": symbol, "error": exc.message})
            return
        if ok:
            first = symbol not in self.leases
            self.leases[symbol] = now + self.lease_seconds
            if first:
                log.info("lease acquired", extra={"symbol": symbol})
                self.store.forget(symbol)  # another writer may have written since we last looked
                self.builders[symbol] = MinuteBars(symbol)
                self.complete_from[symbol] = NEVER
                await self.source.watch(symbol)
        elif symbol in self.leases:
            log.warning("lease taken by another collector", extra={"symbol": symbol})
            await self._lose(symbol)

    async def _lose(self, symbol: str) -> None:
        self.leases.pop(symbol, None)
        self.builders.pop(symbol, None)
        self.partial.pop(symbol, None)
        self.repair_due.pop(symbol, None)
        self.awaiting_first_tick.discard(symbol)
        self._first_repair_done.discard(symbol)
        self.writer.drop(symbol)
        await self.source.unwatch(symbol)

    # -- ticks -----------------------------------------------------------------------------
    async def _consume(self) -> None:
        while True:
            event = await self.source.events.get()
            if isinstance(event, Tick):
                self._on_tick(event)
            elif isinstance(event, Linked) and event.symbol in self.builders:
                # Repair at once up to the minute the link started in; the stream's first
                # tick then says from which minute on the ticks are whole (`_on_tick`).
                start = int(event.at) - int(event.at) % MINUTE
                self.complete_from[event.symbol] = NEVER
                self.awaiting_first_tick.add(event.symbol)
                self.repair_due[event.symbol] = (0.0, start)
            elif isinstance(event, Unlinked) and event.symbol in self.builders:
                for bar in self.builders[event.symbol].reset():
                    self.partial.setdefault(event.symbol, {})[bar.time] = bar
                self.complete_from[event.symbol] = NEVER
                self.awaiting_first_tick.discard(event.symbol)

    def _on_tick(self, tick: Tick) -> None:
        builder = self.builders.get(tick.symbol)
        if builder is None:
            return  # not ours (no lease) or an unknown symbol
        try:
            ts, price = validate_tick(tick.price, tick.timestamp_ms, self.clock.now(), self._max_tick_age)
        except BadTick as exc:
            self.rejected["bad_tick"] = self.rejected.get("bad_tick", 0) + 1
            log.debug("tick rejected", extra={"symbol": tick.symbol, "reason": str(exc)})
            return
        closed, used = builder.add(ts, price)
        if closed is not None:
            self._on_close(tick.symbol, closed)
        if not used:
            self.rejected["stale_tick"] = self.rejected.get("stale_tick", 0) + 1
            return
        if tick.symbol in self.awaiting_first_tick:
            # The first valid tick since the link: its minute is partial, the next ones whole.
            # Only a valid tick counts: a garbage timestamp must not stand in for the stream's start.
            self.awaiting_first_tick.discard(tick.symbol)
            first_whole = int(ts) - int(ts) % MINUTE + MINUTE
            self.complete_from[tick.symbol] = first_whole
            if tick.symbol not in self.repair_due:  # else that repair schedules this one when done
                self.repair_due[tick.symbol] = (first_whole, first_whole)
        self.last_tick[tick.symbol] = ts
        if builder.bar is not None:  # else the tick amended the bar that just closed
            self.writer.form(tick.symbol, builder.bar)
            self._notify(tick.symbol, builder.bar, False)

    def _on_close(self, symbol: str, bar: Bar) -> None:
        if bar.time < self.complete_from.get(symbol, NEVER):
            self.partial.setdefault(symbol, {})[bar.time] = bar  # repair decides
        else:
            self.writer.closed(symbol, [bar])
        self._notify(symbol, bar, True)

    def _notify(self, symbol: str, bar: tuple, closed: bool) -> None:
        for sink in self.sinks:
            try:
                sink.on_bar(symbol, tuple(bar), closed)
            except Exception:  # noqa: BLE001 - a broken sink must not stop the collector
                log.exception("bar sink failed", extra={"symbol": symbol})

    # -- the clock: closing minutes, repairs, status, retention --------------------------------
    async def _tick_loop(self, stop: asyncio.Event) -> None:
        last_status = 0.0
        while not stop.is_set():
            now = self.clock.now()
            for symbol, builder in list(self.builders.items()):
                # The grace is wall time (network and scheduling delays), whatever the clock speed.
                closed = builder.close_due(now, self.close_grace * self.clock.speed)
                if closed is not None:
                    self._on_close(symbol, closed)
            for symbol, (due, end) in list(self.repair_due.items()):
                if (
                    now >= due + self.close_grace * self.clock.speed
                    and symbol not in self._repairing
                    and time.monotonic() >= self._repair_retry.get(symbol, 0)
                ):
                    self._repairing.add(symbol)
                    asyncio.create_task(self._repair(symbol, (due, end)), name=f"repair-{symbol}")
            if (
                self.leases
                and set(self.leases) <= self._first_repair_done
                and not self.writer.backlog
                and not self.backfilled.is_set()
            ):
                self.backfilled.set()
                last_status = 0.0  # tell at once: the local stack waits for it
            if time.monotonic() - last_status >= self.status_interval:
                last_status = time.monotonic()
                if self.leases or self.source.status.last_error:
                    self.writer.set_status(self.status_record())
            if self.trim and now - self._last_trim >= 3600:
                self._last_trim = now
                asyncio.create_task(self._trim(now), name="retention")
            await asyncio.sleep(min(0.1, self.clock.wall(0.25)))

    def _last_stored(self, symbol: str) -> int | None:
        days = self.store.list_days(symbol)
        if not days:
            return None
        last = max(days)
        bars = self.store.read(symbol, start=day_start(last))
        return int(bars[-1][0]) if bars else None

    async def _repair(self, symbol: str, job: tuple[float, int]) -> None:
        end = job[1]
        try:
            now = self.clock.now()
            floor = int(now - self.backfill_days * DAY)
            floor -= floor % MINUTE
            last = await asyncio.to_thread(self._last_stored, symbol)
            start = floor if last is None else max(floor, last + MINUTE)
            partial = self.partial.get(symbol, {})
            if partial:
                start = min(start, min(partial))
            history: dict[int, tuple] = {}
            older = end
            while older > start:
                minutes = int(min(self.source.history_page_minutes, (older - start) // MINUTE))
                page = await self.source.history(symbol, older, minutes)
                page = [tuple(b) for b in page if _valid_bar(b) and start <= b[0] < older]
                if not page:
                    break
                for b in page:
                    history.setdefault(int(b[0]), b)
                older = min(int(b[0]) for b in page)
            for t, bar in partial.items():
                if start <= t < end and t not in history:
                    history[t] = tuple(bar)  # the upstream has nothing better for that minute
            if symbol not in self.leases:
                return
            if history:
                bars = [history[t] for t in sorted(history)]
                self.writer.closed(symbol, bars)
            self.partial[symbol] = {t: b for t, b in partial.items() if t >= end}
            if self.repair_due.get(symbol) == job:
                complete_from = self.complete_from.get(symbol, NEVER)
                if end < complete_from < NEVER:
                    self.repair_due[symbol] = (complete_from, int(complete_from))
                else:
                    del self.repair_due[symbol]
            self._first_repair_done.add(symbol)
            self.repairs += 1
            log.info(
                "history repaired", extra={"symbol": symbol, "bars": len(history), "from": start, "to": end}
            )
        except (SourceError, Unavailable) as exc:
            self._repair_retry[symbol] = time.monotonic() + 5
            log.warning("history repair failed; will retry", extra={"symbol": symbol, "error": str(exc)})
        finally:
            self._repairing.discard(symbol)

    def trim_cutoff(self, now: float) -> str:
        """Oldest day to keep: up to `build_retention_days` while history is being built (the
        first `retention_days` after start, as S3 lifecycle counts from an object's last
        write), then `retention_days`."""
        keep = (
            self.retention_days
            if now - self._started_at >= self.retention_days * DAY
            else self.build_retention_days
        )
        return day_of(int(now - keep * DAY))

    async def _trim(self, now: float) -> None:
        cutoff = self.trim_cutoff(now)
        for symbol in list(self.leases):
            try:
                removed = await asyncio.to_thread(self.store.delete_days_before, symbol, cutoff)
            except Unavailable:
                continue
            if removed:
                log.info("retention: removed old days", extra={"symbol": symbol, "days": removed})
