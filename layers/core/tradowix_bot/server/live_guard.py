"""The publisher's periodic key check: which open connections, and which subscriptions, their key
no longer allows.

`check()` reads every connection and subscription (one scan of the connections table) and
the keys (KeyRegistry, cached REVALIDATE_SECONDS), and answers verdicts; it sends nothing.
A disabled or deleted key, or a key-less connection once keys exist, ends the connection; a
key restricted meanwhile ends each subscription to a symbol it may no longer read
(`symbol_forbidden`), the connection and its other subscriptions stay. The key store being
unreachable ends nothing: the next round checks again.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ..errors import DomainError, Forbidden, Unauthorized
from .authn import Authenticator
from .keys import KeyRegistry
from .live_connections import Connection, ConnectionStore, Subscription
from .logs import get_logger

logger = get_logger("tradowix-live")


@dataclass(frozen=True)
class Verdicts:
    connections: list[Connection]  # every open connection (for keepalive)
    close: list[tuple[str, Unauthorized]]  # connection id, why
    end: list[tuple[Subscription, Forbidden]]  # subscriptions the key may no longer read


class KeyGuard:
    def __init__(self, connections: ConnectionStore, keys: KeyRegistry | None):
        self.connections = connections
        # None: no key store configured, nothing is checked. Reads only (no rate limit counted).
        self.auth = Authenticator(keys) if keys is not None else None

    def check(self, between_pages: Callable[[], object] | None = None) -> Verdicts | None:
        """None when the connections table cannot be read (nothing is decided this round).
        `between_pages`: called between the pages of the connections scan."""
        try:
            connections, subscriptions = self.connections.connections_and_subscriptions(between_pages)
        except DomainError as exc:
            logger.warning("connection scan failed", extra={"reason": exc.message})
            return None
        close: list[tuple[str, Unauthorized]] = []
        end: list[tuple[Subscription, Forbidden]] = []
        if self.auth is None:
            return Verdicts(connections, close, end)
        closing: set[str] = set()
        # The key-less connections' verdict (open mode over?) is decided once per round: each
        # recheck(None) reads the key store's version item while no key exists, so per
        # connection it was one consistent GetItem per connection every round (issue 16: 25.8 a
        # second from the publisher at 1,000 connections).
        keyless: Unauthorized | None | bool = False  # False: not decided yet this round
        for connection in connections:
            if connection.key_id:
                problem = self._key_problem(connection.key_id)
            else:
                if keyless is False:
                    keyless = self._key_problem(None)
                problem = keyless
            if problem is not None:
                close.append((connection.connection_id, problem))
                closing.add(connection.connection_id)
        for sub in subscriptions:
            if sub.connection_id in closing or not sub.key_id:
                continue
            try:
                self.auth.recheck(sub.key_id).require_symbol(sub.symbol)
            except Forbidden as exc:
                end.append((sub, exc))
            except DomainError:
                continue  # a key problem ends the whole connection (above) or the next round
        return Verdicts(connections, close, end)

    def _key_problem(self, key_id: str | None) -> Unauthorized | None:
        try:
            self.auth.recheck(key_id)
        except Unauthorized as exc:
            return exc
        except DomainError:
            return None  # key store unreachable: keep serving, the next round checks again
        return None
