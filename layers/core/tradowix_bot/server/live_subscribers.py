"""The publisher's copy of who subscribes to what, kept fresh without a Query per symbol per second.

Every subscribe, unsubscribe and disconnect raises its symbol's version item in the connections
table (`ConnectionStore.subscriber_versions`). `refresh()` reads all versions in one small Query
and re-reads the subscriber list (one Query on `by_symbol`) only of symbols whose version moved.
Because that index is eventually consistent, a moved symbol is read once more SETTLE_SECONDS
later; every FULL_REFRESH_SECONDS every list is re-read anyway (a safety net for a version write
that failed after its change).

Thread-safety: `refresh()` does its I/O holding no lock and then swaps in new immutable lists;
readers (`subscribers`) never wait.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from ..errors import DomainError
from .live_connections import ConnectionStore, Subscription
from .logs import get_logger

SETTLE_SECONDS = 2.0
FULL_REFRESH_SECONDS = 300.0
# A connection or subscription the publisher ended stays filtered out this long, in case the
# (eventually consistent) index still lists it for a moment.
DROPPED_SECONDS = 30.0

logger = get_logger("tradowix-live")


@dataclass(frozen=True)
class _Entry:
    subscribers: tuple[Subscription, ...]
    version: int | None  # the version the list was read at (None: read without one)
    loaded_at: float
    recheck_at: float | None  # read once more then (the index may have lagged the version)


class SubscriberDirectory:
    def __init__(self, connections: ConnectionStore, *, clock: Callable[[], float] = time.time):
        self.connections = connections
        self.clock = clock
        self._entries: dict[str, _Entry] = {}
        self._dropped: dict[tuple, float] = {}  # (connection_id,) or (connection_id, symbol, tf) -> when
        self.reads = {"versions": 0, "subscribers": 0}  # requests made, for the bench's figures

    def subscribers(self, symbol: str) -> tuple[Subscription, ...]:
        """The cached list; a symbol seen for the first time is read now (once)."""
        entry = self._entries.get(symbol)
        if entry is None:
            try:
                version = self.connections.subscriber_versions().get(symbol, 0)
                self.reads["versions"] += 1
            except DomainError:
                version = None  # read again at the next refresh
            entry = self._load(symbol, version) or _Entry((), None, float("-inf"), None)
        return entry.subscribers

    def symbols(self) -> list[str]:
        return list(self._entries)

    def all_subscriptions(self) -> list[Subscription]:
        return [s for e in list(self._entries.values()) for s in e.subscribers]

    def known(self) -> int:
        return sum(len(e.subscribers) for e in list(self._entries.values()))

    def forget_connection(self, connection_id: str) -> None:
        """Drop a gone or closed connection from every list now (its records are being deleted)."""
        self._dropped[(connection_id,)] = self.clock()
        for symbol in list(self._entries):
            self._refilter(symbol)

    def forget_subscription(self, sub: Subscription) -> None:
        """Drop one ended subscription now (its record is being deleted)."""
        self._dropped[(sub.connection_id, sub.symbol, sub.timeframe)] = self.clock()
        self._refilter(sub.symbol)

    def _refilter(self, symbol: str) -> None:
        entry = self._entries.get(symbol)
        if entry is not None:
            kept = self._live(entry.subscribers)
            if len(kept) != len(entry.subscribers):
                self._entries[symbol] = _Entry(kept, entry.version, entry.loaded_at, entry.recheck_at)

    def _live(self, subscribers) -> tuple[Subscription, ...]:
        if not self._dropped:
            return tuple(subscribers)
        dropped = self._dropped
        return tuple(
            s
            for s in subscribers
            if (s.connection_id,) not in dropped and (s.connection_id, s.symbol, s.timeframe) not in dropped
        )

    def refresh(self) -> None:
        """Re-read the lists that changed (see the module docstring). Never raises."""
        if not self._entries:
            return
        try:
            versions = self.connections.subscriber_versions()
            self.reads["versions"] += 1
        except DomainError as exc:
            logger.warning("subscriber versions unreadable", extra={"reason": exc.message})
            return
        now = self.clock()
        for key, when in list(self._dropped.items()):
            if now - when >= DROPPED_SECONDS:
                del self._dropped[key]
        for symbol, entry in list(self._entries.items()):
            version = versions.get(symbol, 0)
            moved = entry.version != version
            due = (entry.recheck_at is not None and now >= entry.recheck_at) or (
                now - entry.loaded_at >= FULL_REFRESH_SECONDS
            )
            if moved or due:
                self._load(symbol, version, recheck=moved)

    def _load(self, symbol: str, version: int | None, *, recheck: bool = False) -> _Entry | None:
        try:
            subscribers = tuple(self.connections.subscribers(symbol))
            self.reads["subscribers"] += 1
        except DomainError as exc:  # keep the last list; the next round retries
            logger.warning("subscriber refresh failed", extra={"symbol": symbol, "reason": exc.message})
            return None
        now = self.clock()
        entry = _Entry(self._live(subscribers), version, now, now + SETTLE_SECONDS if recheck else None)
        self._entries[symbol] = entry
        return entry
