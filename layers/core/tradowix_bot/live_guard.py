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

from dataclasses import dataclass

from .errors import DomainError, Forbidden, Unauthorized
from .keys import KeyRegistry, require_symbol
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
        self.keys = keys

    def check(self) -> Verdicts | None:
        """None when the connections table cannot be read (nothing is decided this round)."""
        try:
            connections, subscriptions = self.connections.connections_and_subscriptions()
        except DomainError as exc:
            logger.warning("connection scan failed", extra={"reason": exc.message})
            return None
        close: list[tuple[str, Unauthorized]] = []
        end: list[tuple[Subscription, Forbidden]] = []
        if self.keys is None:
            return Verdicts(connections, close, end)
        closing: set[str] = set()
        # Whether keys exist (open mode over) is read once per round: `any_keys()` reads the key
        # store's version item each time it finds no key, so once per key-less connection it was
        # one consistent GetItem per connection every round (100 a second at 1,000 connections).
        keys_required = None
        for connection in connections:
            if not connection.key_id and keys_required is None:
                keys_required = self._keys_required()
            problem = self._key_problem(connection, bool(keys_required))
            if problem is not None:
                close.append((connection.connection_id, problem))
                closing.add(connection.connection_id)
        for sub in subscriptions:
            if sub.connection_id in closing or not sub.key_id:
                continue
            try:
                require_symbol(self.keys.authenticate_id(sub.key_id), sub.symbol)
            except Forbidden as exc:
                end.append((sub, exc))
            except DomainError:
                continue  # a key problem ends the whole connection (above) or the next round
        return Verdicts(connections, close, end)

    def _keys_required(self) -> bool:
        try:
            return self.keys.any_keys()
        except DomainError:
            return False  # key store unreachable: keep serving, the next round checks again

    def _key_problem(self, connection: Connection, keys_required: bool) -> Unauthorized | None:
        try:
            if connection.key_id:
                self.keys.authenticate_id(connection.key_id)
            elif keys_required:
                raise Unauthorized("API keys are now required; reconnect with your key", code="missing_key")
        except Unauthorized as exc:
            return exc
        except DomainError:
            return None  # key store unreachable: keep serving, the next round checks again
        return None
