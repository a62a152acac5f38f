"""Where bars go: closed 1m bars → S3 (one PUT per closed minute per symbol), the forming
bar → a small DynamoDB record (throttled), and the upstream status record.

Why this pattern (README "Collector costs"): rewriting an S3 object every few seconds costs
≈ $2.6 per symbol-month in PUTs; one PUT per closed minute is ≈ $0.22 and a forming record
written at most every 1.5 s ≈ $1.1, and both latency bounds (closed bar readable 2 s after
its minute, forming bar 2 s after a tick) still hold.

Nothing is lost when a service is down: closed bars wait in `pending` (keyed by minute, so
a retry can never duplicate a bar) and are retried with backoff; a forming record that
failed is simply superseded by the next one.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from ..errors import Unavailable
from ..logs import get_logger
from ..state import StateStore
from ..store import CandleStore

log = get_logger("collector")


class BarWriter:
    def __init__(
        self,
        store: CandleStore,
        state: StateStore,
        *,
        forming_interval: float = 1.0,
        forming_ttl: int = 180,
        max_backoff: float = 30.0,
        s3_workers: int = 4,
    ):
        self.store = store
        self.state = state
        self.forming_interval = forming_interval
        self.forming_ttl = forming_ttl
        self.max_backoff = max_backoff
        self.pending: dict[str, dict[int, tuple]] = {}
        self.forming: dict[str, tuple] = {}
        self.status: dict | None = None
        self.puts = 0
        self.forming_writes = 0
        self.failures = 0
        self.written_callbacks: list = []  # called (symbol, bars) after a successful S3 write
        self.forming_callbacks: list = []  # called (bars by symbol) after a forming write
        self._retry_at: dict[str, float] = {}
        self._backoff: dict[str, float] = {}
        self._last_forming = 0.0
        self._forming_retry_at = 0.0
        self._wake = asyncio.Event()
        self._count_lock = threading.Lock()
        self._s3_pool = ThreadPoolExecutor(max_workers=s3_workers, thread_name_prefix="s3-writer")
        self._ddb_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ddb-writer")

    # -- what the collector hands over -----------------------------------------------------
    def closed(self, symbol: str, bars) -> None:
        slot = self.pending.setdefault(symbol, {})
        for b in bars:
            slot[int(b[0])] = tuple(b)
        self._wake.set()

    def form(self, symbol: str, bar: tuple) -> None:
        self.forming[symbol] = tuple(bar)

    def set_status(self, status: dict) -> None:
        self.status = status
        self._wake.set()

    def drop(self, symbol: str) -> None:
        """The lease was lost: another collector writes this symbol now."""
        self.pending.pop(symbol, None)
        self.forming.pop(symbol, None)

    @property
    def backlog(self) -> int:
        return sum(len(v) for v in self.pending.values())

    # -- the loop --------------------------------------------------------------------------
    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            self._wake.clear()
            await self.flush_once()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=0.1)

    async def flush_once(self) -> None:
        loop = asyncio.get_running_loop()
        now = time.monotonic()
        due = [s for s, bars in self.pending.items() if bars and self._retry_at.get(s, 0) <= now]
        jobs = [loop.run_in_executor(self._s3_pool, self._write_closed, s) for s in due]
        if now - self._last_forming >= self.forming_interval and now >= self._forming_retry_at:
            self._last_forming = now
            if self.forming or self.status:
                jobs.append(loop.run_in_executor(self._ddb_pool, self._write_dynamo))
        if jobs:
            await asyncio.gather(*jobs)

    async def drain(self, timeout: float = 10.0) -> bool:
        """Write everything pending (shutdown). True when nothing is left."""
        deadline = time.monotonic() + timeout
        self._retry_at.clear()
        self._last_forming = 0.0
        self._forming_retry_at = 0.0
        await self.flush_once()
        while self.backlog and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
            self._retry_at.clear()
            await self.flush_once()
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
        try:
            written = self.store.write(symbol, bars, sole_writer=True)
        except Unavailable as exc:
            self.failures += 1
            backoff = min(self.max_backoff, self._backoff.get(symbol, 0.5) * 2)
            self._backoff[symbol] = backoff
            self._retry_at[symbol] = time.monotonic() + backoff
            log.warning(
                "candle store write failed; bars kept for retry",
                extra={"symbol": symbol, "bars": len(bars), "retry_in": backoff, "error": exc.message},
            )
            return
        with self._count_lock:  # several writer threads: `+=` alone would lose counts
            self.puts += written
        self._backoff.pop(symbol, None)
        self._retry_at.pop(symbol, None)
        slot = self.pending.get(symbol, {})
        for t, bar in snapshot.items():
            if slot.get(t) == bar:  # a newer version that arrived meanwhile stays pending
                del slot[t]
        for callback in self.written_callbacks:
            callback(symbol, bars)

    def _write_dynamo(self) -> None:
        forming, self.forming = self.forming, {}
        try:
            if forming:
                self.state.write_forming(forming, self.forming_ttl)
                self.forming_writes += len(forming)
                for callback in self.forming_callbacks:
                    callback(forming)
            if self.status is not None:
                self.state.write_upstream_status(self.status)
                self.status = None
        except Unavailable as exc:
            self.failures += 1
            for symbol, bar in forming.items():  # keep unless a newer one arrived meanwhile
                self.forming.setdefault(symbol, bar)
            self._forming_retry_at = time.monotonic() + 1.0
            log.warning("state store write failed; will retry", extra={"error": exc.message})
