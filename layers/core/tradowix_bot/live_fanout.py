"""The live fan-out: every forming update and close of a 1-minute bar, from the collector, to
every subscriber, resampled to the subscriber's own timeframe.

- The 1m bars of the current bucket are kept per symbol (backfilled from the store when the
  publisher starts mid-bucket), so a 5m subscriber gets the 5m bar as it stands.
- Forming updates are throttled per subscription (default at most one every 2 s); the latest
  one is still delivered when its window opens (`tick`). The last update of every bar has
  `"closed": true` and is never throttled, followed by `timing` for the next bar; the next
  bar's first update is not throttled either.
- Traffic keeps every connection alive: a connection that got nothing for KEEPALIVE_SECONDS
  gets a `timing` (or `status`) message, well inside API Gateway's 10-minute idle timeout.
- Every REVALIDATE_SECONDS the publisher checks each connection's key against the key table
  (KeyRegistry cache REVALIDATE_SECONDS too): a disabled or deleted key, or a key-less
  connection once keys exist, is told so and closed with DELETE @connections. Bound: about
  2 x REVALIDATE_SECONDS (20 s by default).
- 410 Gone removes that connection only; other failures are logged by the poster.

Runs inside the collector process (see docs/live-streaming.md for the measurement). on_bar is
synchronous: call it from a worker thread (e.g. `await asyncio.to_thread(publisher.on_bar, ...)`),
never on an event loop (in the local stack that loop serves the @connections API it posts to).
Build it with `LivePublisher.from_env()` and call `start()` once.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from . import ws_protocol
from .candles import as_dicts
from .errors import DomainError, Unauthorized
from .keys import KeyRegistry
from .live_connections import Connection, ConnectionStore, Subscription
from .live_poster import GONE, ConnectionPoster, encode
from .logs import get_logger
from .resample import resample
from .timing import bar_timing

MINUTE = 60
THROTTLE_SECONDS = 2.0
SUBSCRIBER_REFRESH_SECONDS = 1.0
KEEPALIVE_SECONDS = 300.0
REVALIDATE_SECONDS = 10.0
TICK_SECONDS = 0.5

logger = get_logger("tradowix-live")


@dataclass
class _Group:
    """The current bar of one (symbol, timeframe), shared by all its subscribers."""

    bucket: int | None = None
    candle: dict | None = None
    closed: bool = False
    version: int = 0


@dataclass
class _SubState:
    last_sent: float = float("-inf")
    version_sent: int = 0


@dataclass
class _Symbol:
    minutes: dict[int, tuple] = field(default_factory=dict)  # 1m bars of the current buckets
    covered_from: int | None = None  # earliest minute known to be complete in `minutes`
    subscribers: list[Subscription] = field(default_factory=list)
    loaded_at: float = float("-inf")


@dataclass
class FanoutStats:
    posted: int = 0
    gone: int = 0
    failed: int = 0
    closed_connections: int = 0


class LivePublisher:
    def __init__(
        self,
        connections: ConnectionStore,
        poster: ConnectionPoster,
        keys: KeyRegistry | None = None,
        *,
        store=None,  # CandleStore: backfills the current bucket when starting mid-bucket
        throttle_seconds: float = THROTTLE_SECONDS,
        subscriber_refresh_seconds: float = SUBSCRIBER_REFRESH_SECONDS,
        keepalive_seconds: float = KEEPALIVE_SECONDS,
        revalidate_seconds: float = REVALIDATE_SECONDS,
        clock: Callable[[], float] = time.time,
    ):
        self.connections = connections
        self.poster = poster
        self.keys = keys
        self.store = store
        self.throttle_seconds = throttle_seconds
        self.subscriber_refresh_seconds = subscriber_refresh_seconds
        self.keepalive_seconds = keepalive_seconds
        self.revalidate_seconds = revalidate_seconds
        self.clock = clock
        self.stats = FanoutStats()
        self._symbols: dict[str, _Symbol] = {}
        self._groups: dict[tuple[str, int], _Group] = {}
        self._subs: dict[tuple[str, str, int], _SubState] = {}
        self._last_traffic: dict[str, float] = {}
        self._revalidated_at = float("-inf")
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @classmethod
    def from_env(cls) -> LivePublisher:
        """Built from the same environment as the functions (CONNECTIONS_TABLE,
        WS_MANAGEMENT_ENDPOINT, KEYS_TABLE, CANDLES_BUCKET, LIVE_THROTTLE_SECONDS)."""
        from .config import Settings
        from .store import CandleStore

        s = Settings.from_env()
        return cls(
            ConnectionStore(s.connections_table),
            ConnectionPoster(s.ws_management_endpoint),
            KeyRegistry(s.keys_table, cache_seconds=min(s.key_cache_seconds, REVALIDATE_SECONDS)),
            store=CandleStore(s.candles_bucket),
            throttle_seconds=s.live_throttle_seconds,
        )

    # -- the collector's entry point ---------------------------------------------------------
    def on_bar(self, symbol: str, bar: tuple, closed: bool) -> None:
        """A forming update (closed=False) or the close (closed=True) of the 1m bar `bar`
        = (time, open, high, low, close) of `symbol`."""
        minute = int(bar[0])
        with self._lock:
            sym = self._symbols.setdefault(symbol, _Symbol())
            sym.minutes[minute] = tuple(bar)
            if sym.covered_from is None:
                sym.covered_from = minute
            subs = self._subscribers(symbol, sym)
            now = self.clock()
            sends: list[tuple[str, dict]] = []
            for timeframe in sorted({s.timeframe for s in subs}):
                members = [s for s in subs if s.timeframe == timeframe]
                sends.extend(self._update_group(symbol, sym, timeframe, minute, closed, members, now))
            self._prune(symbol, sym, subs)
            self._send(sends, now)

    def _subscribers(self, symbol: str, sym: _Symbol) -> list[Subscription]:
        """The cached subscriber list. Loaded here only the first time (or when no background
        thread runs); otherwise `tick` refreshes it, so a publish never waits on DynamoDB."""
        now = self.clock()
        stale = now - sym.loaded_at >= self.subscriber_refresh_seconds
        if sym.loaded_at == float("-inf") or (stale and self._thread is None):
            self._load_subscribers(symbol, sym)
        return sym.subscribers

    def _load_subscribers(self, symbol: str, sym: _Symbol) -> None:
        try:
            subscribers = self.connections.subscribers(symbol)
        except DomainError as exc:  # keep the last list; the next round retries
            logger.warning("subscriber refresh failed", extra={"symbol": symbol, "reason": exc.message})
            return
        sym.subscribers, sym.loaded_at = subscribers, self.clock()

    def known_subscriptions(self) -> int:
        """How many subscriptions the cached lists hold (all symbols)."""
        with self._lock:
            return sum(len(sym.subscribers) for sym in self._symbols.values())

    def refresh_subscribers(self) -> None:
        """Reload stale subscriber lists (outside the publish lock: queries take time)."""
        now = self.clock()
        with self._lock:
            stale = [
                (s, sym)
                for s, sym in self._symbols.items()
                if now - sym.loaded_at >= self.subscriber_refresh_seconds
            ]
        for symbol, sym in stale:
            try:
                subscribers = self.connections.subscribers(symbol)
            except DomainError as exc:
                logger.warning("subscriber refresh failed", extra={"symbol": symbol, "reason": exc.message})
                continue
            with self._lock:
                sym.subscribers, sym.loaded_at = subscribers, self.clock()

    def _bucket_bar(self, symbol: str, sym: _Symbol, timeframe: int, bucket: int) -> dict | None:
        if sym.covered_from is not None and bucket < sym.covered_from and self.store is not None:
            try:  # started mid-bucket: the bucket's earlier minutes come from the store
                for b in self.store.read(symbol, bucket, sym.covered_from) or []:
                    sym.minutes.setdefault(int(b[0]), tuple(b))
                sym.covered_from = bucket
            except DomainError as exc:
                logger.warning("backfill failed", extra={"symbol": symbol, "reason": exc.message})
        bars = [sym.minutes[t] for t in sorted(sym.minutes) if bucket <= t < bucket + timeframe]
        if not bars:
            return None
        return as_dicts(resample(bars, timeframe))[0]

    def _update_group(
        self,
        symbol: str,
        sym: _Symbol,
        timeframe: int,
        minute: int,
        closed: bool,
        members: list[Subscription],
        now: float,
    ) -> list[tuple[str, dict]]:
        group = self._groups.setdefault((symbol, timeframe), _Group())
        bucket = minute - minute % timeframe
        sends: list[tuple[str, dict]] = []
        if group.bucket is not None and bucket > group.bucket and not group.closed:
            # The previous bar's last minute never closed (a gap): close it now.
            last = self._bucket_bar(symbol, sym, timeframe, group.bucket)
            if last is not None:
                sends += self._closing(symbol, timeframe, group, last, members, now)
        if group.bucket is not None and bucket < group.bucket:
            return sends  # a late update of an already finished bar
        candle = self._bucket_bar(symbol, sym, timeframe, bucket)
        group.bucket, group.candle = bucket, candle
        group.closed = closed and minute + MINUTE == bucket + timeframe
        group.version += 1
        if group.closed:
            sends += self._closing(symbol, timeframe, group, candle, members, now)
        else:
            sends += self._due(symbol, timeframe, group, members, now)
        return sends

    def _closing(self, symbol, timeframe, group, candle, members, now) -> list[tuple[str, dict]]:
        group.closed = True
        bar_msg = ws_protocol.bar(symbol, timeframe, candle, True)
        timing_msg = ws_protocol.timing(symbol, timeframe, bar_timing(symbol, timeframe, now))
        out = []
        for s in members:
            state = self._subs.setdefault((s.connection_id, symbol, timeframe), _SubState())
            # The close does not use up the throttle window: the next bar's first update goes
            # out at once, so a chart shows the new candle when its countdown restarts.
            state.last_sent, state.version_sent = float("-inf"), group.version
            out += [(s.connection_id, bar_msg), (s.connection_id, timing_msg)]
        return out

    def _due(self, symbol, timeframe, group, members, now) -> list[tuple[str, dict]]:
        """Forming updates for the subscriptions whose throttle window is open."""
        if group.candle is None:
            return []
        msg = None
        out = []
        for s in members:
            state = self._subs.setdefault((s.connection_id, symbol, timeframe), _SubState())
            if state.version_sent < group.version and now - state.last_sent >= self.throttle_seconds:
                msg = msg or ws_protocol.bar(symbol, timeframe, group.candle, group.closed)
                state.last_sent, state.version_sent = now, group.version
                out.append((s.connection_id, msg))
        return out

    def _prune(self, symbol: str, sym: _Symbol, subs: list[Subscription]) -> None:
        """Keep only the minutes of the buckets still in use (at least the last hour)."""
        if not sym.minutes:
            return
        newest = max(sym.minutes)
        oldest_needed = newest - 3600
        for timeframe in {s.timeframe for s in subs}:
            oldest_needed = min(oldest_needed, newest - newest % timeframe)
        for t in [t for t in sym.minutes if t < oldest_needed]:
            del sym.minutes[t]
        if sym.covered_from is not None and sym.covered_from < oldest_needed:
            sym.covered_from = oldest_needed

    def _send(self, sends: list[tuple[str, dict]], now: float) -> None:
        if not sends:
            return
        encoded: dict[int, bytes] = {}  # one encoding per distinct message
        posts = [(cid, encoded.setdefault(id(msg), encode(msg))) for cid, msg in sends]
        results = self.poster.post_many(posts)
        gone = set()
        for (cid, _), result in zip(posts, results, strict=True):
            if result == GONE:
                gone.add(cid)
            elif result == "ok":
                self._last_traffic[cid] = now
                self.stats.posted += 1
            else:
                self.stats.failed += 1
        for cid in gone:
            self._forget(cid)
        self.stats.gone += len(gone)

    def _forget(self, connection_id: str) -> None:
        """The client is gone (410): drop its records and state, nobody else's."""
        try:
            self.connections.remove_connection(connection_id)
        except DomainError as exc:
            logger.warning("cleanup failed", extra={"connection_id": connection_id, "reason": exc.message})
        self._last_traffic.pop(connection_id, None)
        for key in [k for k in self._subs if k[0] == connection_id]:
            del self._subs[key]
        for sym in self._symbols.values():
            sym.subscribers = [s for s in sym.subscribers if s.connection_id != connection_id]

    # -- periodic work -------------------------------------------------------------------------
    def tick(self) -> None:
        """Deliver throttled updates whose window opened; every REVALIDATE_SECONDS, check keys
        and keep idle connections alive."""
        with self._lock:
            now = self.clock()
            sends: list[tuple[str, dict]] = []
            for (symbol, timeframe), group in self._groups.items():
                if group.closed:
                    continue
                members = [s for s in self._symbols[symbol].subscribers if s.timeframe == timeframe]
                sends += self._due(symbol, timeframe, group, members, now)
            self._send(sends, now)
            if now - self._revalidated_at >= self.revalidate_seconds:
                self._revalidated_at = now
                self.revalidate(now)

    def revalidate(self, now: float | None = None) -> None:
        now = self.clock() if now is None else now
        try:
            connections = self.connections.connections()
        except DomainError as exc:
            logger.warning("connection scan failed", extra={"reason": exc.message})
            return
        keepalive: list[tuple[str, dict]] = []
        subscribed = {s.connection_id: s for sym in self._symbols.values() for s in sym.subscribers}
        for connection in connections:
            problem = self._key_problem(connection)
            if problem is not None:
                self._close(connection.connection_id, problem)
                continue
            last = self._last_traffic.setdefault(connection.connection_id, now)
            if now - last >= self.keepalive_seconds:
                sub = subscribed.get(connection.connection_id)
                keepalive.append(
                    (
                        connection.connection_id,
                        ws_protocol.timing(
                            sub.symbol, sub.timeframe, bar_timing(sub.symbol, sub.timeframe, now)
                        )
                        if sub
                        else ws_protocol.status(True, "keepalive"),
                    )
                )
        self._send(keepalive, now)

    def _key_problem(self, connection: Connection) -> Unauthorized | None:
        if self.keys is None:
            return None
        try:
            if connection.key_id:
                self.keys.authenticate_id(connection.key_id)
            elif self.keys.any_keys():
                raise Unauthorized("API keys are now required; reconnect with your key", code="missing_key")
        except Unauthorized as exc:
            return exc
        except DomainError:
            return None  # key store unreachable: keep serving, the next round checks again
        return None

    def _close(self, connection_id: str, reason: Unauthorized) -> None:
        self.poster.post(connection_id, ws_protocol.error(reason.code, reason.message))
        self.poster.delete(connection_id)
        self._forget(connection_id)
        self.stats.closed_connections += 1

    # -- background thread ---------------------------------------------------------------------
    def start(self) -> LivePublisher:
        """Run `tick` every TICK_SECONDS in a daemon thread."""
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="live-publisher", daemon=True)
            self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(TICK_SECONDS):
            try:
                self.refresh_subscribers()
                self.tick()
            except Exception:  # noqa: BLE001 - the loop must survive; logged with traceback
                logger.exception("live publisher tick failed")

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        self.poster.close()
