"""The Collector: one process that keeps its symbols' 1m history complete and fresh.

    source ──Tick──► validate ──► TrackedSymbol.bars ──closed──► BarWriter ──► S3 (one PUT per minute)
                                        └──forming──► BarWriter ──► DynamoDB forming record
                                        └───────────► sinks.on_bar(symbol, bar, closed)

- One `TrackedSymbol` per symbol this collector holds the lease for (tracked.py): its bar
  builder, link state, partial minutes and repair job. It goes whole when the lease goes.
- Sinks (e.g. the live WebSocket publisher) get every forming update (closed=False) and
  every whole close (closed=True); a close may come again, amended, when a straggler tick
  of that minute arrives before any tick of the next one, or when history replaces a
  minute that partners saw forming around a dropped link.
- Several collectors share the symbols (scale-out): each renews a heartbeat, takes at most
  its share (symbols / running collectors) of the free leases, most preferred first, and
  hands back what exceeds its share when another collector joins. A symbol whose lease
  belongs to another live collector is neither streamed nor written; a dead collector's
  symbols are taken over once its leases run out.
- Gap repair (repair.py): when a symbol's stream (re)starts (Linked), the collector pages
  the source's history back to the last stored bar (or `backfill_days` on an empty store)
  and writes what is missing. The minute of the first valid tick after Linked is partial
  (an upstream may get round to a subscription a minute late, and garbage may come first),
  and so are the forming bar and a bar the clock closed just before the link dropped (its
  tail may have died with the link); once such a minute is over it is taken from history.
  A link back within the minute it dropped in goes on building that minute's bar, so the
  next minute is whole. Stopping is like a dropped link: a bar the clock closed that no
  later tick proved whole is checked against history before the collector exits.
- A stored day that cannot be decoded is found (at the first repair of a lease, by the
  hourly check, or when a write needs it), reported in status and rebuilt.
- Status: one record per collector, renewed every `status_interval`; on stop the final one
  says so, and a record its writer stopped renewing reads as not live.
- Retention on emulators without S3 lifecycle: the collector deletes old day objects itself.

Every time is read through `self.clock` (see clock.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import socket
import uuid
import zlib
from collections.abc import Iterable

from ..candles import MINUTE, valid_bar
from ..errors import MalformedCandles, Unavailable
from ..server.logs import get_logger
from ..server.redact import redact
from ..server.state import StateStore
from ..server.store import DAY, CandleStore, day_of
from .bars import MAX_TICK_AGE, BadTick, Bar, validate_tick
from .clock import Clock
from .repair import GapRepair
from .sources import AuthFailed, Linked, Source, SourceError, Tick, TokenMissing, Unlinked
from .tracked import Problem, RepairJob, TrackedSymbol, minute_of
from .writer import BarWriter

log = get_logger("collector")

REPAIR_RETRY = 5.0  # seconds before the first retry of a failed repair; doubles each time
REPAIR_RETRY_MAX = 300.0
CLOCK_STEP = 0.1  # the clock loop's shortest nap (ticks waiting their turn, a compressed clock)
CLOCK_IDLE = 1.0  # its longest: what no due time announces (a new repair, a corrupt day) waits no longer
# Forming updates reach the sinks (the live fan-out) together every this many seconds, the latest
# per symbol: one wake-up of the fan-out's thread instead of one per tick (which cost more CPU
# than the fan-out's work). Closes go at once. Partners get a forming update at most every 2 s.
SINK_INTERVAL = 0.25


def _preference(owner: str, symbol: str) -> int:
    """Each collector ranks the symbols in its own order, so collectors that start together
    mostly ask for different leases first."""
    return zlib.crc32(f"{owner}|{symbol}".encode())


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
        forming_valid: float = 6.0,
        status_interval: float = 5.0,
        auth_backoff: float = 300.0,
        check_interval: float = 3600.0,
        repair_attempts: int = 5,
    ):
        self.source = source
        self.store = store
        self.state = state
        self.symbols = list(symbols) if symbols else None
        self.clock = clock or Clock()
        self.sinks = list(sinks)
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.lease_seconds = lease_seconds
        self.retention_days = retention_days
        self.build_retention_days = build_retention_days
        self.trim = trim
        self.close_grace = close_grace
        # On a compressed clock (tests, benchmarks) a write still costs wall time: the records are
        # written at most every 0.1 / 0.2 wall seconds there, whatever the speed.
        forming_interval = max(forming_interval, self.clock.slack(0.1))
        forming_valid = max(forming_valid, 6 * forming_interval)
        self.status_interval = max(status_interval, self.clock.slack(0.2))
        self.auth_backoff = auth_backoff
        self.check_interval = check_interval
        self.repair_attempts = repair_attempts
        self.writer = BarWriter(
            store, state, self.clock, forming_interval=forming_interval, forming_valid=forming_valid
        )
        self.writer.may_write = self._lease_surely_ours
        self.repairer = GapRepair(source, store, self.clock, backfill_days=backfill_days)
        self.tracked: dict[str, TrackedSymbol] = {}
        # Closed bars not yet stored when a symbol was given up because the state store could not
        # be reached: written if this collector gets the lease back before anyone else took it.
        self._unwritten: dict[str, dict[int, tuple]] = {}
        self.alive: dict[str, list[str]] = {}  # running collectors → their symbols (last heartbeat)
        self.rejected: dict[str, int] = {}
        self.repairs = 0
        self.backfilled = asyncio.Event()  # set once every leased symbol's first repair is done
        self.error: BaseException | None = None
        self._started_at = self.clock.now()
        # A compressed clock must not turn a few wall seconds of delay into "stale" ticks.
        self._max_tick_age = max(MAX_TICK_AGE, self.clock.slack(10))
        self._last_check = float("-inf")
        self._io_in_flight = 0
        self._background: set[asyncio.Task] = set()
        self._forming_notes: dict[str, tuple] = {}  # symbol → forming bar not yet handed to the sinks

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
                        await self._io(self.store.write_catalog, infos)
                    self.symbols = [i.symbol for i in infos]
                except (SourceError, Unavailable) as exc:
                    log.warning("no instrument list yet; retrying", extra={"error": redact(str(exc))})
                    await self.clock.wait(stop, 10)
            if stop.is_set():
                return
            log.info("collector started", extra={"source": self.source.name, "symbols": len(self.symbols)})
            tasks = [
                asyncio.create_task(self._lease_loop(stop), name="leases"),
                asyncio.create_task(self._consume(), name="ticks"),
                asyncio.create_task(self._clock_loop(stop), name="clock"),
            ]
            if self.sinks:
                tasks.append(asyncio.create_task(self._sink_loop(stop), name="sinks"))
            for task in [*tasks, writer]:
                task.add_done_callback(lambda t: self._crashed(t, stop))
            await stop.wait()
        finally:
            for task in [*tasks, *self._background]:
                task.cancel()
            for task in [*tasks, *self._background]:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            stop.set()
            self.writer.wake()  # it may be waiting for the clock
            with contextlib.suppress(asyncio.CancelledError):
                await writer
            await self._stop()

    async def _stop(self) -> None:
        """A clean stop: check unproven bars, write what is pending, withdraw the forming bars,
        say in the status record that this collector stopped, hand the leases back."""
        await self._check_unproven()
        await self.source.close()
        for symbol in self.tracked:
            self.writer.unform(symbol)
        self.writer.set_status(self.status_record(final=True), 0)
        if not await self.writer.drain():
            log.error("stopping with unwritten bars", extra={"bars": self.writer.backlog})
        with contextlib.suppress(Unavailable):
            await self._io(
                self.state.heartbeat, self.owner, -1, self.clock.now()
            )  # gone: others need not wait
        for symbol in list(self.tracked):
            with contextlib.suppress(Unavailable):
                await self._io(self.state.release_lease, symbol, self.owner)
        self.writer.close()

    async def _check_unproven(self, timeout: float = 5.0) -> None:
        """Stopping drops every link: a bar the clock closed that no later tick proved whole (its
        tail may still have been in flight) is checked against history, as after a dropped link.
        Bounded (wall time: it waits on the network), so an upstream that does not answer
        cannot hold the stop."""

        async def check(t: TrackedSymbol, bar: Bar) -> None:
            for b in await self.source.history(t.name, bar.time + MINUTE, 1):
                if valid_bar(b) and int(b[0]) == bar.time:
                    self.writer.closed(t.name, [tuple(b)])  # history's: its tick count is unproven
                    self._notify(t.name, tuple(b), True)

        jobs = [check(t, t.bars.unproven_closed) for t in self.tracked.values() if t.bars.unproven_closed]
        if jobs:
            try:
                await asyncio.wait_for(asyncio.gather(*jobs), timeout)
            except (SourceError, Unavailable, TimeoutError) as exc:
                log.warning("last closed bars not checked against history", extra={"error": redact(str(exc))})

    def _lease_surely_ours(self, symbol: str) -> bool:
        """Our lease on `symbol` runs for a while yet (a sixth of a lease: time for a write)."""
        t = self.tracked.get(symbol)
        return t is not None and self.clock.now() < t.lease_until - self.lease_seconds / 6

    def _crashed(self, task: asyncio.Task, stop: asyncio.Event) -> None:
        """A loop that dies is a bug: stop loudly (the supervisor restarts us) instead of limping."""
        if not task.cancelled() and task.exception() is not None:
            self.error = task.exception()
            log.error("collector loop crashed", extra={"task": task.get_name()}, exc_info=task.exception())
            stop.set()

    def busy(self) -> bool:
        """Whether anything is under way (a tick to handle, a request, a repair, a write); a
        test on a ManualClock waits for this to settle after moving the clock."""
        return bool(
            self._io_in_flight
            or not self.source.events.empty()
            or self.writer.busy()
            or any(t.repairing for t in self.tracked.values())
            or any(not task.done() for task in self._background)
        )

    # -- status ----------------------------------------------------------------------------
    def status_record(self, *, final: bool = False) -> dict:
        """This collector's status record. `error` and each symbol's `error` are codes (what
        partners may see); `last_error` and `detail` are for the owner, scrubbed of secrets."""
        st = self.source.status
        return {
            "source": self.source.name,
            "owner": self.owner,
            "connected": st.connected and not final,
            "authenticated": st.authenticated and not final,
            "error": st.error_code,
            "last_error": redact(st.last_error) if st.last_error else None,
            "stopped": final,
            "symbols": {s: self._symbol_status(t, final) for s, t in sorted(self.tracked.items())},
            "rejected": {**st.rejected_frames, **self.rejected},
            "unwritten_bars": self.writer.backlog,
            "backfilled": self.backfilled.is_set() and not final,
        }

    def _symbol_status(self, t: TrackedSymbol, final: bool) -> dict:
        now = self.clock.now()
        corrupt = sorted(t.corrupt_days | self.writer.rebuilding(t.name))
        if t.problem is not None:
            state = "failed"
        elif final or not t.linked:
            state = "unlinked"
        elif corrupt:
            state = "degraded"
        else:
            state = "live"
        out: dict = {
            "state": state,
            "last_tick_age": round(now - t.last_tick, 1) if t.last_tick is not None else None,
            "error": t.problem.code if t.problem else ("stored_day_corrupt" if corrupt else None),
        }
        if t.problem:
            out["detail"] = redact(t.problem.detail)
        if corrupt:
            out["corrupt_days"] = corrupt
        if t.rebuilt_days:
            out["rebuilt_days"] = sorted(t.rebuilt_days)
        if t.skipped:
            out["skipped"] = dict(t.skipped)
        return out

    def _publish_status(self) -> None:
        self.writer.set_status(self.status_record(), 3 * self.status_interval)

    # -- source ----------------------------------------------------------------------------
    async def _start_source(self, stop: asyncio.Event) -> bool:
        backoff = 1.0
        while not stop.is_set():
            try:
                await self.source.start()
                return True
            except AuthFailed as exc:
                wait = self.auth_backoff
                if isinstance(exc, TokenMissing):  # a fresh deployment: status says so, no exit
                    self.source.status.fail("session_token_missing", str(exc))
                    log.warning("no session token stored yet; waiting for one", extra={"retry_in": wait})
                else:
                    self.source.status.fail("upstream_auth_failed", str(exc))
                    log.error("upstream refused the session token; backing off", extra={"retry_in": wait})
                pause = self.source.wait_for_new_token(wait)  # or less: a new token is stored
            except SourceError as exc:
                wait = backoff
                backoff = min(backoff * 2, self.auth_backoff)
                self.source.status.fail("upstream_unreachable", str(exc))
                log.warning(
                    "upstream unavailable; backing off", extra={"error": redact(str(exc)), "retry_in": wait}
                )
                pause = self.clock.sleep(wait)
            self._publish_status()
            stopped = asyncio.ensure_future(stop.wait())
            paused = asyncio.ensure_future(pause)
            await asyncio.wait({stopped, paused}, return_when=asyncio.FIRST_COMPLETED)
            for waiter in (stopped, paused):
                waiter.cancel()
        return False

    # -- leases: who writes which symbol -----------------------------------------------------
    async def _lease_loop(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            started = self.clock.now()
            await self._balance()
            # Every third of a lease from the start of the last round, however long it took.
            await self.clock.wait(stop, started + self.lease_seconds / 3 - self.clock.now())

    async def _balance(self) -> None:
        now = self.clock.now()
        symbols = sorted(self.symbols or [], key=lambda s: _preference(self.owner, s))
        # Renewals go out together: a round must take well under a lease, however many symbols.
        await asyncio.gather(*(self._renew(s, now) for s in symbols if s in self.tracked))
        # The heartbeat after the renewals: when it runs out, this collector's leases have too,
        # so the others can take them over in the same round they count it gone.
        try:
            self.alive = await self._io(self.state.heartbeat, self.owner, self.lease_seconds, now, symbols)
        except Unavailable:
            pass  # keep the last count
        share = self.share(symbols)
        held = [s for s in symbols if s in self.tracked]
        for symbol in held[share:]:  # another collector joined: hand over what exceeds our share
            await self._hand_over(symbol)
        if len(self.tracked) >= share:
            return
        try:
            leases = await self._io(self.state.leases)
        except Unavailable:
            return
        # A lease in our own name that we do not track was left by this collector's previous
        # life (killed, restarted): ours to take back now rather than after it runs out.
        free = [
            s
            for s in symbols
            if s not in self.tracked
            and (leases.get(s) is None or leases[s][1] < now or leases[s][0] == self.owner)
        ]
        while free and len(self.tracked) < share:  # most preferred first; another may win some
            batch, free = free[: share - len(self.tracked)], free[share - len(self.tracked) :]
            await asyncio.gather(
                *(self._acquire(s, now, ours=s in leases and leases[s][0] == self.owner) for s in batch)
            )

    def share(self, symbols: list[str]) -> int:
        """How many of its symbols this collector writes: each symbol counts for 1/n of a
        collector when n running collectors could write it."""
        writers = dict.fromkeys(symbols, 1)  # this one, even before its first heartbeat is read
        for owner, theirs in self.alive.items():
            if owner != self.owner:
                for s in theirs:
                    if s in writers:
                        writers[s] += 1
        return math.ceil(round(sum(1 / n for n in writers.values()), 6))

    async def _acquire(self, symbol: str, now: float, *, ours: bool = False) -> None:
        """Take `symbol`'s lease; `ours`: the lease was last held by this collector."""
        try:
            ok = await self._io(self.state.acquire_lease, symbol, self.owner, self.lease_seconds, now)
        except Unavailable:
            return
        if ok and symbol not in self.tracked:
            log.info("lease acquired", extra={"symbol": symbol})
            self.store.forget(symbol)  # another writer may have written since we last looked
            self.tracked[symbol] = TrackedSymbol(symbol, now + self.lease_seconds)
            unwritten = self._unwritten.pop(symbol, None)
            if unwritten and ours:  # nobody wrote the symbol meanwhile: these minutes are ours to store
                self.writer.closed(symbol, [unwritten[t] for t in sorted(unwritten)], fill_only=True)
            await self.source.watch(symbol)

    async def _renew(self, symbol: str, now: float) -> None:
        try:
            ok = await self._io(self.state.acquire_lease, symbol, self.owner, self.lease_seconds, now)
        except Unavailable as exc:
            # Keep writing while the lease is surely still ours; stop before it can run out.
            t = self.tracked.get(symbol)
            if t is not None and self.clock.now() > t.lease_until - self.lease_seconds / 6:
                log.warning("lease renewal failed; giving up the symbol", extra={"symbol": symbol})
                await self._lose(symbol, keep_unwritten=True)
            else:
                log.warning("lease renewal failed; retrying", extra={"symbol": symbol, "error": exc.message})
            return
        t = self.tracked.get(symbol)
        if t is None:
            return
        if ok:
            t.lease_until = now + self.lease_seconds
        else:
            log.warning("lease taken by another collector", extra={"symbol": symbol})
            await self._lose(symbol)

    async def _lose(self, symbol: str, *, keep_unwritten: bool = False) -> None:
        """Another collector may write `symbol` now: forget it at once (`keep_unwritten`: keep its
        closed bars not yet stored aside, in case the lease comes back to us untouched)."""
        unwritten = self.writer.pending.get(symbol)
        if keep_unwritten and unwritten:
            self._unwritten[symbol] = {**self._unwritten.get(symbol, {}), **unwritten}
        self.tracked.pop(symbol, None)
        self.writer.drop(symbol)
        await self.source.unwatch(symbol)

    async def _hand_over(self, symbol: str) -> None:
        """Give a symbol back for another collector to take: only once nothing of it is in
        flight (bars to write, a repair, partial minutes), so its new writer repairs the rest."""
        t = self.tracked[symbol]
        if t.repairing or t.repair is not None or t.partial or self.writer.pending.get(symbol):
            return
        log.info("lease handed over (another collector joined)", extra={"symbol": symbol})
        self.tracked.pop(symbol)
        self.writer.unform(symbol)
        await self.source.unwatch(symbol)
        with contextlib.suppress(Unavailable):
            await self._io(self.state.release_lease, symbol, self.owner)

    # -- ticks -----------------------------------------------------------------------------
    async def _consume(self) -> None:
        while True:
            event = await self.source.events.get()
            t = self.tracked.get(event.symbol)
            if t is None:
                continue  # not ours (no lease) or an unknown symbol
            if isinstance(event, Tick):
                self._on_tick(t, event)
            elif isinstance(event, Linked):
                t.on_linked(event.at)
            elif isinstance(event, Unlinked):
                t.on_unlinked()
                self.writer.unform(t.name)  # never serve a bar whose writer lost its link

    def _on_tick(self, t: TrackedSymbol, tick: Tick) -> None:
        try:
            ts, price = validate_tick(tick.price, tick.timestamp_ms, self.clock.now(), self._max_tick_age)
        except BadTick as exc:
            self.rejected["bad_tick"] = self.rejected.get("bad_tick", 0) + 1
            log.debug("tick rejected", extra={"symbol": t.name, "reason": str(exc)})
            return
        closed, used = t.bars.add(ts, price)
        if closed is not None:
            self._on_close(t, closed)
        if not used:
            self.rejected["stale_tick"] = self.rejected.get("stale_tick", 0) + 1
            return
        if t.awaiting_first_tick:
            # Only a valid tick counts: a garbage timestamp must not stand in for the stream's start.
            t.on_first_tick(ts)
        t.last_tick = ts
        if t.bars.bar is not None:  # else the tick amended the bar that just closed
            self.writer.form(t.name, t.bars.bar)
            if self.sinks:
                self._forming_notes[t.name] = tuple(t.bars.bar)  # handed over by _sink_loop

    def _on_close(self, t: TrackedSymbol, bar: Bar) -> None:
        self.writer.end_forming(t.name)
        if t.is_whole(bar.time):
            self.writer.closed(t.name, [bar])
            self._notify(t.name, bar, True)
        else:
            t.partial[bar.time] = bar  # history replaces it once the minute is over (repair)

    async def _sink_loop(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await self.clock.sleep(max(SINK_INTERVAL, self.clock.slack(0.05)))
            notes, self._forming_notes = self._forming_notes, {}
            for symbol, bar in notes.items():
                self._notify(symbol, bar, False)

    def _notify(self, symbol: str, bar: tuple, closed: bool) -> None:
        if closed:  # the close supersedes a forming update of its minute still waiting
            note = self._forming_notes.get(symbol)
            if note is not None and note[0] <= bar[0]:
                del self._forming_notes[symbol]
        for sink in self.sinks:
            try:
                sink.on_bar(symbol, tuple(bar), closed)
            except Exception:  # noqa: BLE001 - a broken sink must not stop the collector
                log.exception("bar sink failed", extra={"symbol": symbol})

    # -- the clock: closing minutes, repairs, status, checks -----------------------------------
    async def _clock_loop(self, stop: asyncio.Event) -> None:
        last_status = float("-inf")
        while not stop.is_set():
            now = self.clock.now()
            # The grace covers network and scheduling delays: wall time, whatever the clock speed.
            grace = self.clock.slack(self.close_grace)
            if self.source.events.empty():  # else ticks of the minute may be waiting their turn
                for t in list(self.tracked.values()):
                    closed = t.bars.close_due(now, grace)
                    if closed is not None:
                        self._on_close(t, closed)
            while self.writer.corrupt_found:
                symbol, day = self.writer.corrupt_found.popleft()
                self._found_corrupt(symbol, {day})
            for t in list(self.tracked.values()):
                job = t.repair
                if job is not None and not t.repairing and now >= max(job.due + grace, t.retry_at):
                    t.repairing = True
                    self._spawn(self._repair(t, job), f"repair-{t.name}")
            if (
                self.tracked
                and all(t.backfilled or (t.problem and t.repair is None) for t in self.tracked.values())
                and not self.writer.backlog
                and not self.backfilled.is_set()
            ):
                self.backfilled.set()
                last_status = float("-inf")  # tell at once: the local stack waits for it
            if now - last_status >= self.status_interval:
                last_status = now
                if self.tracked or self.source.status.error_code:
                    self._publish_status()
            if now - self._last_check >= self.check_interval:
                self._last_check = now
                self._spawn(self._check_store(now), "store-check")
            await self.clock.sleep(self._nap(now, grace, last_status))

    def _nap(self, now: float, grace: float, last_status: float) -> float:
        """Clock seconds until the clock loop has something to do: the next close, repair or
        status record (not a fixed 0.1 s: ten wake-ups a second cost more CPU than the work)."""
        shortest = max(CLOCK_STEP, self.clock.slack(0.005))
        if not self.source.events.empty():
            return shortest  # closes wait for the ticks in the queue
        due = [now + CLOCK_IDLE, self._last_check + self.check_interval]
        if self.tracked or self.source.status.error_code:
            due.append(last_status + self.status_interval)
        for t in self.tracked.values():
            if t.bars.bar is not None:
                due.append(t.bars.bar.time + MINUTE + grace)
            if t.repair is not None and not t.repairing:
                due.append(max(t.repair.due + grace, t.retry_at))
        return max(shortest, min(due) - now)

    def _spawn(self, coro, name: str) -> None:
        task = asyncio.create_task(coro, name=name)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def _found_corrupt(self, symbol: str, days: set[str]) -> None:
        t = self.tracked.get(symbol)
        if t is None or not days - t.corrupt_days:
            return
        log.error("stored day cannot be read; rebuilding it", extra={"symbol": symbol, "days": sorted(days)})
        t.corrupt_days |= days
        now = self.clock.now()
        t.repair = RepairJob(now, minute_of(now))  # a running repair leaves this one for after it

    async def _repair(self, t: TrackedSymbol, job: RepairJob) -> None:
        try:
            if not t.backfilled:  # the first repair of a lease looks for corrupt days once
                found = set(await self._io(self.store.corrupt_days, t.name))
                if found - t.corrupt_days:
                    log.error(
                        "stored day cannot be read; rebuilding it",
                        extra={"symbol": t.name, "days": sorted(found)},
                    )
                t.corrupt_days |= found
            result = await self.repairer.run(t, job)
            if self.tracked.get(t.name) is not t:
                return  # the lease went meanwhile
            for day, bars in result.rebuilt.items():
                if bars:
                    self.writer.rebuild(t.name, day, bars)
                else:  # nothing left to rebuild it from: an unreadable object serves nobody
                    await self._io(self.store.delete_day, t.name, day)
                t.corrupt_days.discard(day)
                t.rebuilt_days.add(day)
            self.writer.closed(t.name, result.replaced)
            self.writer.closed(t.name, result.bars, fill_only=True)
            for bar in result.replaced:  # partners saw these minutes forming: here is the whole bar
                self._notify(t.name, bar, True)
            t.skipped = result.skipped
            t.problem = None
            t.repair_done(job)
            self.repairs += 1
            log.info(
                "history repaired",
                extra={
                    "symbol": t.name,
                    "bars": result.written,
                    "from": result.start,
                    "to": result.end,
                    **({"skipped": result.skipped} if result.skipped else {}),
                },
            )
        except (SourceError, Unavailable) as exc:
            # The upstream or a store is away for now: retry, less and less often, for as long as it takes.
            delay = self._retry_later(t)
            log.warning(
                "history repair failed; will retry",
                extra={"symbol": t.name, "error": redact(str(exc)), "retry_in": delay},
            )
        except MalformedCandles as exc:
            self._repair_failed(t, job, "replay_input_invalid", exc.message)
        except Exception as exc:  # noqa: BLE001 - a bug: bounded retries, never a hot loop
            log.exception("history repair crashed", extra={"symbol": t.name})
            self._repair_failed(t, job, "repair_failed", f"{type(exc).__name__}: {exc}")
        finally:
            t.repairing = False

    def _retry_later(self, t: TrackedSymbol) -> float:
        t.failures += 1
        delay = min(REPAIR_RETRY * 2 ** (t.failures - 1), REPAIR_RETRY_MAX)
        t.retry_at = self.clock.now() + delay
        return delay

    def _repair_failed(self, t: TrackedSymbol, job: RepairJob, code: str, detail: str) -> None:
        """Input that cannot be used (a bad replay file): a few retries with back-off (the owner
        may fix the file), then the symbol stays failed; its status says why."""
        t.problem = Problem(code, detail)
        delay = self._retry_later(t)
        if t.failures >= self.repair_attempts:
            if t.repair == job:
                t.repair = None
            log.error(
                "history repair failed; giving up until restart",
                extra={"symbol": t.name, "error": redact(detail), "attempts": t.failures},
            )
        else:
            log.warning(
                "history repair failed; will retry",
                extra={"symbol": t.name, "error": redact(detail), "retry_in": delay, "attempt": t.failures},
            )
        self._publish_status()

    async def _check_store(self, now: float) -> None:
        """Hourly: look for day objects that cannot be decoded; on emulators, apply retention."""
        for t in list(self.tracked.values()):
            if not t.backfilled:
                continue  # its first repair looks anyway
            try:
                found = set(await self._io(self.store.corrupt_days, t.name))
            except Unavailable:
                continue
            if self.tracked.get(t.name) is t:
                self._found_corrupt(t.name, found)
        if self.trim:
            await self._trim(now)

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
        for symbol in list(self.tracked):
            try:
                removed = await self._io(self.store.delete_days_before, symbol, cutoff)
            except Unavailable:
                continue
            if removed:
                log.info("retention: removed old days", extra={"symbol": symbol, "days": removed})

    async def _io(self, fn, *args):
        """A blocking store call on a worker thread, counted (see `busy`)."""
        self._io_in_flight += 1
        try:
            return await asyncio.to_thread(fn, *args)
        finally:
            self._io_in_flight -= 1
