"""The live fan-out: every forming update and close of a 1-minute bar, from the collector, to
every subscriber, resampled to the subscriber's own timeframe.

Pieces (each in its own module; this one puts them together):

- `BarBook` (live_buckets): the 1m bars of the current buckets and the resampled bar of one.
- `SubscriberDirectory` (live_subscribers): who subscribes to what; one small Query a second
  notices changes, a symbol's subscriber list is re-read only when it changed.
- `KeyGuard` (live_guard): every REVALIDATE_SECONDS (`LIVE_REVALIDATE_SECONDS`), the connections whose key stopped working
  (closed: `key_disabled`/`invalid_key`/`missing_key`) and the subscriptions to a symbol the key
  may no longer read (ended: `symbol_forbidden`; the connection stays). Bound: about
  2 x REVALIDATE_SECONDS (KeyRegistry cache REVALIDATE_SECONDS too), 20 s by default.
- Here: the current bar of each (symbol, timeframe) with subscribers, and per subscription what
  was delivered: forming updates throttled (at most one every THROTTLE_SECONDS; the latest is
  delivered when the window opens), the last update of every bar `"closed": true`, never
  throttled, followed by `timing` for the next bar (whose first update is not throttled
  either). A subscription never gets a bar older than
  the last bar of the `history` it was sent (`since`), and gets `closed` once per bar, in time
  order. A bar whose last minute the collector closes late (its ticks were partial: history
  repairs it) is closed with that repaired bar; only when the next bar closes first is it
  closed as it stands. Keepalive: a connection that got nothing for KEEPALIVE_SECONDS gets a `timing` (or
  `status`), well inside API Gateway's 10-minute idle timeout. 410 Gone removes that
  connection only; other failures are logged by the poster.

Threads, and no lock held across I/O: `start()` runs a delivery thread that owns all the
state above and does the @connections posts (one thread, so each connection's messages keep
their order), and a refresher thread that does the DynamoDB reads (subscriber changes, key
checks) and deletes, and hands its results to the delivery thread through the event queue;
its key check starts between batches of posts. `on_bar` only enqueues: the collector is never
held up by a slow post. Without `start()` (tests, benchmarks) every call does its work at once,
in the caller's thread.

Runs inside the collector process (see docs/live-streaming.md). Build it with
`Services.publisher()` (services.py) and call `start()` once.
"""

from __future__ import annotations

import collections
import itertools
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from .. import resample
from ..errors import DomainError, Unauthorized
from ..timing import bar_timing
from . import ws_protocol
from .keys import KeyRegistry
from .live_buckets import BarBook
from .live_connections import ConnectionStore, Subscription
from .live_guard import KeyGuard, Verdicts
from .live_poster import GONE, ConnectionPoster, encode
from .live_subscribers import SubscriberDirectory
from .logs import get_logger

THROTTLE_SECONDS = 2.0
SUBSCRIBER_REFRESH_SECONDS = 1.0
KEEPALIVE_SECONDS = 300.0
REVALIDATE_SECONDS = 10.0
TICK_SECONDS = 0.5
# The key check may start this much early, to start between batches of posts (_run_refresher).
KEY_CHECK_EARLY_SECONDS = 1.0
MAX_PENDING = 10_000  # queued events; past this, forming updates are dropped (closes never)

logger = get_logger("tradowix-live")
_STOP = ("stop",)


@dataclass
class _Group:
    """The current bar of one (symbol, timeframe) that has subscribers."""

    bucket: int | None = None
    candle: dict | None = None
    closed: bool = False
    version: int = 0
    # The previous bar, when the collector has not closed its last minute yet: a minute whose
    # ticks were partial (a link started or dropped in it) is closed late, from history.
    unclosed: int | None = None


@dataclass
class _Delivery:
    """What one subscription was sent."""

    since: int  # nothing older than this bucket (the last bar of its history)
    last_sent: float = float("-inf")
    version_sent: int = 0
    closed_bucket: int | None = None  # the newest bar sent as closed


@dataclass
class FanoutStats:
    posted: int = 0
    gone: int = 0
    failed: int = 0
    closed_connections: int = 0
    ended_subscriptions: int = 0
    dropped_updates: int = 0


class _Messages:
    """The messages of one group state, built once for all its subscribers."""

    def __init__(self, symbol: str, timeframe: int, group: _Group, now: float):
        self.symbol, self.timeframe, self.group, self.now = symbol, timeframe, group, now
        self._bar: dict | None = None
        self._timing: dict | None = None

    @property
    def bar(self) -> dict:
        if self._bar is None:
            self._bar = ws_protocol.bar(self.symbol, self.timeframe, self.group.candle, self.group.closed)
        return self._bar

    @property
    def timing(self) -> dict:
        if self._timing is None:
            timing = bar_timing(self.symbol, self.timeframe, self.now)
            self._timing = ws_protocol.timing(self.symbol, self.timeframe, timing)
        return self._timing


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
        self.throttle_seconds = throttle_seconds
        self.subscriber_refresh_seconds = subscriber_refresh_seconds
        self.keepalive_seconds = keepalive_seconds
        self.revalidate_seconds = revalidate_seconds
        self.clock = clock
        self.stats = FanoutStats()
        self.bars = BarBook(store)
        self.subscribers = SubscriberDirectory(connections, clock=clock)
        self.guard = KeyGuard(connections, keys)
        self._groups: dict[tuple[str, int], _Group] = {}
        self._deliveries: dict[tuple[str, str, int], _Delivery] = {}
        self._last_traffic: dict[str, float] = {}
        self._versions = itertools.count(1)
        self._refreshed_at = float("-inf")
        self._events: queue.Queue = queue.Queue(maxsize=MAX_PENDING)
        self._removals: collections.deque[str] = collections.deque()  # gone connections' records
        self._stop = threading.Event()
        self._not_posting = threading.Event()  # clear while the delivery thread posts a batch
        self._not_posting.set()
        self._threads: list[threading.Thread] = []

    # -- entry points ---------------------------------------------------------------------------
    def on_bar(self, symbol: str, bar: tuple, closed: bool) -> None:
        """A forming update (closed=False) or the close (closed=True) of the 1m bar `bar`
        = (time, open, high, low, close[, volume]) of `symbol`."""
        self._submit(("bar", symbol, tuple(bar), closed), droppable=not closed)

    def tick(self) -> None:
        """Deliver throttled updates whose window opened (and catch up new subscriptions)."""
        self._submit(("tick",))

    def revalidate(self, due: float | None = None) -> None:
        """Check every connection's key and subscriptions; close or end what it no longer allows,
        and keep idle connections alive. Until `due` (time.monotonic()), a batch of posts in
        flight goes first between the pages of the connections scan."""

        def let_posts_go_first() -> None:
            if due is not None:
                self._not_posting.wait(max(0.0, due - time.monotonic()))

        verdicts = self.guard.check(let_posts_go_first)
        if verdicts is None:
            return
        self._submit(("verdicts", verdicts))
        for connection_id, _ in verdicts.close:
            self._remove(connection_id)
        for sub, _ in verdicts.end:
            try:
                self.connections.unsubscribe(sub.connection_id, sub.symbol, sub.timeframe)
            except DomainError as exc:
                logger.warning(
                    "unsubscribe failed", extra={"connection_id": sub.connection_id, "reason": exc.message}
                )

    def refresh_subscribers(self) -> None:
        """Pick up subscriber changes (one small read; a symbol's list only when it changed)."""
        self._refreshed_at = self.clock()
        self.subscribers.refresh()

    def known_subscriptions(self) -> int:
        """How many subscriptions the cached lists hold (all symbols)."""
        return self.subscribers.known()

    def held(self) -> dict[str, int]:
        """What the publisher holds in memory, by kind (the soak bench watches it)."""
        return {
            "subscriptions": self.subscribers.known(),
            "connections": len(self._last_traffic),
            "deliveries": len(self._deliveries),
            "groups": len(self._groups),
            "minutes": self.bars.minutes_held(),
            "queued": self._events.qsize(),
        }

    def _submit(self, event: tuple, droppable: bool = False) -> None:
        if not self._threads:
            self._handle(event)  # not started: at once, in the caller's thread
            return
        try:
            self._events.put_nowait(event)
        except queue.Full:
            if droppable:  # a newer forming update of the bar follows within seconds
                self.stats.dropped_updates += 1
            else:
                self._events.put(event)

    def _handle(self, event: tuple) -> None:
        kind = event[0]
        if kind == "bar":
            self._on_bar(*event[1:])
        elif kind == "tick":
            self._tick()
        elif kind == "verdicts":
            self._apply(event[1])

    # -- bars -----------------------------------------------------------------------------------
    def _on_bar(self, symbol: str, bar: tuple, closed: bool) -> None:
        if not self._threads and self.clock() - self._refreshed_at >= self.subscriber_refresh_seconds:
            self.refresh_subscribers()  # not started: nobody else refreshes
        self.bars.add(symbol, bar)
        minute = int(bar[0])
        now = self.clock()
        by_timeframe: dict[int, list[Subscription]] = {}
        for sub in self.subscribers.subscribers(symbol):
            by_timeframe.setdefault(sub.timeframe, []).append(sub)
        sends: list[tuple[str, dict]] = []
        for timeframe in sorted(by_timeframe):
            sends += self._update_group(symbol, timeframe, minute, closed, by_timeframe[timeframe], now)
        for key in [k for k in self._groups if k[0] == symbol and k[1] not in by_timeframe]:
            # Nobody left at this timeframe: the bar is not followed any more. (A group kept
            # meanwhile would hand its stale bar to the next subscriber.)
            del self._groups[key]
        self.bars.prune(symbol, by_timeframe)
        self._send(sends, now)

    def _update_group(
        self, symbol: str, timeframe: int, minute: int, closed: bool, members: list[Subscription], now: float
    ) -> list[tuple[str, dict]]:
        group = self._groups.setdefault((symbol, timeframe), _Group())
        bucket = resample.bucket_start(minute, timeframe)
        ends_bucket = closed and resample.ends_bucket(minute, timeframe)
        if group.bucket is not None and bucket < group.bucket:
            if ends_bucket and bucket == group.unclosed:  # the late close of the previous bar
                group.unclosed = None
                return self._close_now(symbol, timeframe, bucket, members, now)
            return []  # a late update of an already finished bar
        sends: list[tuple[str, dict]] = []
        if group.unclosed is not None and (bucket > group.bucket or ends_bucket):
            # A newer bar moves on or closes: the previous one's close is not coming (its last
            # minute had no ticks, or no history to repair it): close it first, as it stands.
            sends += self._close_now(symbol, timeframe, group.unclosed, members, now)
            group.unclosed = None
        if group.bucket is not None and bucket > group.bucket and not group.closed:
            group.unclosed = group.bucket  # its close may still come, late (see _Group.unclosed)
        group.bucket = bucket
        group.candle = self.bars.bucket_bar(symbol, timeframe, bucket)
        group.closed = ends_bucket
        group.version = next(self._versions)
        return sends + self._deliver_all(symbol, timeframe, group, members, now)

    def _close_now(self, symbol, timeframe, bucket: int, members, now) -> list[tuple[str, dict]]:
        """The closed bar of an earlier bucket, to the subscriptions that have not moved past it."""
        candle = self.bars.bucket_bar(symbol, timeframe, bucket)
        if candle is None:
            return []
        closing = _Group(bucket=bucket, candle=candle, closed=True, version=next(self._versions))
        return self._deliver_all(symbol, timeframe, closing, members, now)

    def _deliver_all(self, symbol, timeframe, group, members, now) -> list[tuple[str, dict]]:
        messages = _Messages(symbol, timeframe, group, now)
        out: list[tuple[str, dict]] = []
        for sub in members:
            out += self._deliver(sub, group, messages, now)
        return out

    def _deliver(self, sub: Subscription, group: _Group, messages: _Messages, now: float) -> list:
        """What this subscription gets of the group's current state (maybe nothing)."""
        key = (sub.connection_id, sub.symbol, sub.timeframe)
        state = self._deliveries.get(key)
        if state is None:  # first sight: nothing older than its history's last bar
            since = sub.since if sub.since is not None else group.bucket
            state = self._deliveries[key] = _Delivery(since=since if since is not None else 0)
        if group.candle is None or group.bucket is None or group.bucket < state.since:
            return []
        if state.closed_bucket is not None and group.bucket <= state.closed_bucket:
            return []  # this bar (or a newer one) was already sent closed
        cid = sub.connection_id
        if group.closed:
            # The close does not use up the throttle window: the next bar's first update goes out
            # at once, so a chart shows the new candle when its countdown restarts (issue 14).
            state.closed_bucket, state.last_sent, state.version_sent = (
                group.bucket,
                float("-inf"),
                group.version,
            )
            return [(cid, messages.bar), (cid, messages.timing)]
        if state.version_sent < group.version and now - state.last_sent >= self.throttle_seconds:
            state.last_sent, state.version_sent = now, group.version
            return [(cid, messages.bar)]
        return []

    # -- periodic work ----------------------------------------------------------------------------
    def _tick(self) -> None:
        now = self.clock()
        sends: list[tuple[str, dict]] = []
        current: set[tuple[str, str, int]] = set()
        for (symbol, timeframe), group in list(self._groups.items()):
            members = [s for s in self.subscribers.subscribers(symbol) if s.timeframe == timeframe]
            if not members:
                del self._groups[(symbol, timeframe)]
                continue
            current.update((s.connection_id, symbol, timeframe) for s in members)
            sends += self._deliver_all(symbol, timeframe, group, members, now)
        for key in [k for k in self._deliveries if k not in current]:
            del self._deliveries[key]  # the subscription ended
        self._send(sends, now)

    def _apply(self, verdicts: Verdicts) -> None:
        now = self.clock()
        for connection_id, reason in verdicts.close:
            self._close(connection_id, reason)
        for sub, reason in verdicts.end:
            self.poster.post(
                sub.connection_id,
                ws_protocol.error(reason.code, reason.message, symbol=sub.symbol, timeframe=sub.timeframe),
            )
            self.subscribers.forget_subscription(sub)
            self._deliveries.pop((sub.connection_id, sub.symbol, sub.timeframe), None)
            self.stats.ended_subscriptions += 1
        closed = {cid for cid, _ in verdicts.close}
        open_ids = {c.connection_id for c in verdicts.connections} - closed
        for cid in [c for c in self._last_traffic if c not in open_ids]:
            del self._last_traffic[cid]  # gone without a 410 (its $disconnect came)
        some_subscription = {s.connection_id: s for s in self.subscribers.all_subscriptions()}
        keepalive: list[tuple[str, dict]] = []
        for cid in open_ids:
            if now - self._last_traffic.setdefault(cid, now) >= self.keepalive_seconds:
                sub = some_subscription.get(cid)
                keepalive.append(
                    (
                        cid,
                        ws_protocol.timing(
                            sub.symbol, sub.timeframe, bar_timing(sub.symbol, sub.timeframe, now)
                        )
                        if sub
                        else ws_protocol.status(True, "keepalive"),
                    )
                )
        self._send(keepalive, now)

    def _close(self, connection_id: str, reason: Unauthorized) -> None:
        self.poster.post(connection_id, ws_protocol.error(reason.code, reason.message))
        self.poster.delete(connection_id)
        self._forget(connection_id)
        self.stats.closed_connections += 1

    # -- posting ------------------------------------------------------------------------------------
    def _send(self, sends: list[tuple[str, dict]], now: float) -> None:
        if not sends:
            return
        encoded: dict[int, bytes] = {}  # one message goes to many connections: encoded once
        posts = []
        for cid, msg in sends:  # `sends` holds every message, so its id() stays unique here
            data = encoded.get(id(msg))
            if data is None:
                data = encoded[id(msg)] = encode(msg)
            posts.append((cid, data))
        self._not_posting.clear()
        try:
            results = self.poster.post_many(posts)
        finally:
            self._not_posting.set()
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
            self._remove(cid)
        self.stats.gone += len(gone)

    def _forget(self, connection_id: str) -> None:
        """The client is gone or closed: drop its state here, nobody else's."""
        self._last_traffic.pop(connection_id, None)
        for key in [k for k in self._deliveries if k[0] == connection_id]:
            del self._deliveries[key]
        self.subscribers.forget_connection(connection_id)

    def _remove(self, connection_id: str) -> None:
        """Delete a gone connection's records: by the refresher thread when started (DynamoDB
        calls stay off the delivery thread), else now."""
        if self._threads:
            self._removals.append(connection_id)
            return
        try:
            self.connections.remove_connection(connection_id)
        except DomainError as exc:
            logger.warning("cleanup failed", extra={"connection_id": connection_id, "reason": exc.message})

    # -- threads ------------------------------------------------------------------------------------
    def start(self) -> LivePublisher:
        """Run the delivery and refresher threads (daemons)."""
        if not self._threads:
            self._stop.clear()
            self._threads = [
                threading.Thread(target=self._run_delivery, name="live-publisher", daemon=True),
                threading.Thread(target=self._run_refresher, name="live-refresh", daemon=True),
            ]
            for thread in self._threads:
                thread.start()
        return self

    def _run_delivery(self) -> None:
        next_tick = time.monotonic() + TICK_SECONDS
        while not self._stop.is_set():
            try:
                event = self._events.get(timeout=max(0.0, next_tick - time.monotonic()))
            except queue.Empty:
                event = None
            if event is _STOP:
                return
            try:
                if event is not None:
                    self._handle(event)
                if time.monotonic() >= next_tick:
                    next_tick = time.monotonic() + TICK_SECONDS
                    self._tick()
            except Exception:  # noqa: BLE001 - the loop must survive; logged with traceback
                logger.exception("live publisher failed")

    def _run_refresher(self) -> None:
        refreshed = revalidated = float("-inf")
        while not self._stop.wait(min(self.subscriber_refresh_seconds, 1.0)):
            try:
                while self._removals:
                    cid = self._removals.popleft()
                    try:
                        self.connections.remove_connection(cid)
                    except DomainError as exc:
                        logger.warning("cleanup failed", extra={"connection_id": cid, "reason": exc.message})
                now = time.monotonic()
                if now - refreshed >= self.subscriber_refresh_seconds:
                    refreshed = now
                    self.refresh_subscribers()
                due = revalidated + self.revalidate_seconds
                if now >= due - min(KEY_CHECK_EARLY_SECONDS, self.revalidate_seconds / 2):
                    # The key check reads every connection and subscription (1,000 connections:
                    # ~30 ms of this process's interpreter to parse, and the data service's
                    # largest answer): it starts, and reads each next page, between batches of
                    # posts, not under one, where it slowed the batch's last clients by 100 ms
                    # (issue 16). It may start up to a second early for that and never yields
                    # past `due`: the documented bound holds.
                    self._not_posting.wait(max(0.0, due - now))
                    revalidated = time.monotonic()
                    self.revalidate(due)
            except Exception:  # noqa: BLE001 - the loop must survive; logged with traceback
                logger.exception("live publisher refresh failed")

    def stop(self) -> None:
        threads, self._threads = self._threads, []
        if threads:
            self._stop.set()
            try:
                self._events.put_nowait(_STOP)
            except queue.Full:
                pass
            for thread in threads:
                thread.join(timeout=5)
        self.poster.close()
