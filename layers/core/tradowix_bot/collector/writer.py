"""Where bars go: closed 1m bars → S3 (one PUT per closed minute per symbol), the forming
bars → one packed DynamoDB record shared by all symbols (written at most every 1 s), and the
collector's status record.

Why this pattern (README "Collector costs"): rewriting an S3 object every few seconds costs
≈ $2.6 per symbol-month in PUTs; one PUT per closed minute is ≈ $0.22. A forming record per
symbol written every second cost 2.6 M write units (≈ $1.6) per symbol-month; the packed
record costs one write unit per started KB of it (≈ 50 bytes a symbol) per second for all
symbols together, and both latency bounds (closed bar readable ≈ 0.5 s after its minute,
forming bar ≤ 2 s after a tick) still hold.

A forming bar is only served while it is valid (`forming_valid` seconds after its last
write): the writer renews the entries of every bar still forming at least every half of
that, and removes a symbol's entry at once when its link drops or its lease goes. So a bar
whose writer is gone or unlinked is never served as forming for long, nor ever as closed.

Nothing is lost when a service is down: closed bars wait in `pending` (keyed by minute, so
a retry can never duplicate a bar) and are retried with backoff; a forming write that
failed is simply superseded by the next one.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import threading
from concurrent.futures import ThreadPoolExecutor

from ..errors import Unavailable
from ..server.logs import get_logger
from ..server.state import StateStore
from ..server.store import CandleStore, CorruptDay, day_of
from .clock import Clock

log = get_logger("collector")


class BarWriter:
    def __init__(
        self,
        store: CandleStore,
        state: StateStore,
        clock: Clock | None = None,
        *,
        forming_interval: float = 1.0,
        forming_valid: float = 6.0,
        max_backoff: float = 30.0,
        s3_workers: int = 4,
    ):
        self.store = store
        self.state = state
        self.clock = clock or Clock()
        self.forming_interval = forming_interval
        self.forming_valid = forming_valid
        self.max_backoff = max_backoff
        self.pending: dict[str, dict[int, tuple]] = {}
        self.forming: dict[str, tuple] = {}  # the bar each symbol is forming now
        self.status: tuple[dict, float] | None = None  # (record, seconds it stays valid)
        self.puts = 0
        self.forming_writes = 0
        self.failures = 0
        self.written_callbacks: list = []  # called (symbol, bars) after a successful S3 write
        self.forming_callbacks: list = []  # called (bars by symbol) after a forming write
        self.corrupt_found: collections.deque = collections.deque()  # (symbol, day) for the collector
        # Whether this writer may still write a symbol (its lease is surely still running): a
        # collector whose lease ran out while it was stalled must not overwrite the new writer's.
        self.may_write = lambda symbol: True
        self._replace: dict[str, set[str]] = {}  # symbol → days to write whole (corrupt ones)
        self._changed: set[str] = set()  # forming bars not written since they changed
        self._unform: set[str] = set()  # forming records to delete
        self._written_at: dict[str, float] = {}  # symbol → when its forming record was written
        self._retry_at: dict[str, float] = {}
        self._backoff: dict[str, float] = {}
        self._last_forming = float("-inf")
        self._forming_retry_at = float("-inf")
        self._in_flight = 0
        self._wake = asyncio.Event()
        self._lock = threading.Lock()
        self._s3_pool = ThreadPoolExecutor(max_workers=s3_workers, thread_name_prefix="s3-writer")
        self._ddb_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ddb-writer")

    # -- what the collector hands over -----------------------------------------------------
    def closed(self, symbol: str, bars, *, fill_only: bool = False) -> None:
        """Write these closed bars; with `fill_only`, a bar already waiting for that minute wins."""
        slot = self.pending.setdefault(symbol, {})
        for b in bars:
            if fill_only:
                slot.setdefault(int(b[0]), tuple(b))
            else:
                slot[int(b[0])] = tuple(b)
        self._wake.set()

    def rebuild(self, symbol: str, day: str, bars) -> None:
        """Write the corrupt day object `day` anew from `bars` (and closed bars of that day
        still waiting), without reading the damaged object."""
        with self._lock:
            self._replace.setdefault(symbol, set()).add(day)
        self._retry_at.pop(symbol, None)
        self.closed(symbol, bars, fill_only=True)

    def rebuilding(self, symbol: str) -> set[str]:
        return set(self._replace.get(symbol, ()))

    def form(self, symbol: str, bar: tuple) -> None:
        self.forming[symbol] = tuple(bar)
        self._changed.add(symbol)
        self._unform.discard(symbol)

    def end_forming(self, symbol: str) -> None:
        """The bar closed: stop renewing its record (the stored bar of that minute wins)."""
        self.forming.pop(symbol, None)
        self._changed.discard(symbol)

    def unform(self, symbol: str) -> None:
        """The writer of `symbol` is no longer linked: its forming record goes now."""
        self.end_forming(symbol)
        self._unform.add(symbol)
        self._wake.set()

    def set_status(self, status: dict, valid_for: float) -> None:
        self.status = (status, valid_for)
        self._wake.set()

    def drop(self, symbol: str) -> None:
        """The lease was lost: another collector writes this symbol now."""
        self.pending.pop(symbol, None)
        with self._lock:
            self._replace.pop(symbol, None)
        self.unform(symbol)

    def wake(self) -> None:
        self._wake.set()

    @property
    def backlog(self) -> int:
        return sum(len(v) for v in self.pending.values())

    def busy(self) -> bool:
        """Whether a write is under way or was asked for (tests wait for this to settle)."""
        return self._in_flight > 0 or self._wake.is_set()

    # -- the loop --------------------------------------------------------------------------
    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            self._wake.clear()
            await self.flush_once()
            await self.clock.wait(self._wake, self._nap())

    def _nap(self) -> float:
        """Clock seconds until the next write can be due (the next forming write, a retry), at
        most 1 s; what is handed over meanwhile (a closed bar, a withdrawal) wakes it at once."""
        now = self.clock.now()
        due = [now + 1.0]
        if self.forming or self._unform or self.status:
            due.append(max(self._last_forming + self.forming_interval, self._forming_retry_at))
        due += [self._retry_at.get(s, now) for s, bars in self.pending.items() if bars]
        return max(0.1, self.clock.slack(0.005), min(due) - now)

    async def flush_once(self, *, final: bool = False) -> None:
        loop = asyncio.get_running_loop()
        now = self.clock.now()
        due = [
            s
            for s, bars in self.pending.items()
            if bars and (final or self._retry_at.get(s, 0) <= now) and self.may_write(s)
        ]
        jobs = [self._job(loop, self._s3_pool, self._write_closed, s) for s in due]
        if final or (now - self._last_forming >= self.forming_interval and now >= self._forming_retry_at):
            if self._due_forming(now) or self._unform or self.status:
                self._last_forming = now
                jobs.append(self._flush_dynamo(loop, now))
        if jobs:
            await asyncio.gather(*jobs)

    async def _flush_dynamo(self, loop, now: float) -> None:
        # The bookkeeping stays on the event loop; the worker thread only does the requests.
        records = self._due_forming(now)
        unform, self._unform = self._unform, set()
        status, self.status = self.status, None
        self._changed -= set(records)
        if await self._job(loop, self._ddb_pool, self._write_dynamo, records, unform, status, now):
            for symbol in records:
                self._written_at[symbol] = now
            return
        self.failures += 1
        self._unform |= unform - set(self.forming)
        self._changed |= set(records) & set(self.forming)
        if self.status is None:
            self.status = status
        self._forming_retry_at = now + 1.0

    def _due_forming(self, now: float) -> dict[str, tuple]:
        """Changed bars, and unchanged ones whose record is half-way to running out; only of
        symbols whose lease is surely still ours (a stalled writer must not overwrite the new
        writer's entry in the shared record)."""
        renew = now - self.forming_valid / 2
        return {
            s: bar
            for s, bar in self.forming.items()
            if (s in self._changed or self._written_at.get(s, float("-inf")) <= renew) and self.may_write(s)
        }

    async def _job(self, loop, pool, fn, *args):
        self._in_flight += 1
        try:
            return await loop.run_in_executor(pool, fn, *args)
        finally:
            self._in_flight -= 1

    async def drain(self, timeout: float = 10.0) -> bool:
        """Write everything pending that this writer may still write (shutdown). True when
        nothing is left. The bound is wall time: it only limits how long a stop waits for S3."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await self.flush_once(final=True)
                while any(bars and self.may_write(s) for s, bars in self.pending.items()):
                    await asyncio.sleep(0.2)
                    await self.flush_once(final=True)
        return not self.backlog

    def close(self) -> None:
        self._s3_pool.shutdown(wait=True)
        self._ddb_pool.shutdown(wait=True)

    # -- in worker threads -----------------------------------------------------------------
    def _write_closed(self, symbol: str) -> None:
        snapshot = dict(self.pending.get(symbol, {}))
        if not snapshot:
            return
        bars = [snapshot[t] for t in sorted(snapshot)]
        with self._lock:
            replace = self.rebuilding(symbol)
        try:
            written = self.store.write(symbol, bars, sole_writer=True, replace_days=replace)
        except (Unavailable, CorruptDay) as exc:
            self.failures += 1
            backoff = min(self.max_backoff, self._backoff.get(symbol, 0.5) * 2)
            self._backoff[symbol] = backoff
            self._retry_at[symbol] = self.clock.now() + backoff
            if isinstance(exc, CorruptDay):
                self.corrupt_found.append((symbol, exc.day))  # the collector rebuilds it
            log.warning(
                "candle store write failed; bars kept for retry",
                extra={"symbol": symbol, "bars": len(bars), "retry_in": backoff, "error": str(exc)},
            )
            return
        with self._lock:  # several writer threads: `+=` alone would lose counts
            self.puts += written
        self._backoff.pop(symbol, None)
        self._retry_at.pop(symbol, None)
        with self._lock:
            if symbol in self._replace:
                self._replace[symbol] -= {day_of(int(b[0])) for b in bars}
                if not self._replace[symbol]:
                    del self._replace[symbol]
        slot = self.pending.get(symbol, {})
        for t, bar in snapshot.items():
            if slot.get(t) == bar:  # a newer version that arrived meanwhile stays pending
                del slot[t]
        for callback in self.written_callbacks:
            callback(symbol, bars)

    def _write_dynamo(self, records: dict[str, tuple], unform: set[str], status, now: float) -> bool:
        try:
            if records or unform:  # one request for both (the packed record)
                self.state.write_forming(records, self.forming_valid, now, remove=unform)
            if records:
                self.forming_writes += len(records)
                for callback in self.forming_callbacks:
                    callback(records)
            if status is not None:
                self.state.write_collector_status(status[0]["owner"], status[0], now, status[1])
        except Unavailable as exc:
            log.warning("state store write failed; will retry", extra={"error": exc.message})
            return False
        return True
