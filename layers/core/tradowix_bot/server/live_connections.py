"""Live WebSocket connections and their subscriptions, in the connections table (DynamoDB).

    connection_id="<id>"  sk="meta"                     the connection: key_id, connected_at, subs (count)
    connection_id="<id>"  sk="sub#<SYMBOL>#<timeframe>"  one subscription: symbol, timeframe, key_id,
                                                        since (time of the history's last bar)
    connection_id="#subscribers"  sk="<SYMBOL>"          version: raised on every subscriber change

Subscription items carry `symbol`, so the sparse index `by_symbol` lists the subscribers of a
symbol in one query. Every connection item expires (TTL `expires_at`) a little after API
Gateway's 2-hour connection limit, because `$disconnect` is not guaranteed.

The version items let the publisher notice subscriber changes with one small Query a second
for all symbols (`subscriber_versions`), and query a symbol's subscribers only when its version
moved (docs/live-streaming.md has the reads per symbol-month).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from boto3.dynamodb.conditions import Key

from ..errors import BadRequest, NotFound
from . import aws
from .storage_errors import translate

META = "meta"
SUB_PREFIX = "sub#"
VERSIONS_PK = "#subscribers"  # not a connection id (those never start with '#')
BY_SYMBOL_INDEX = "by_symbol"
MAX_CONNECTION_SECONDS = 2 * 3600  # API Gateway closes every connection after 2 hours
TTL_MARGIN_SECONDS = 15 * 60
# A connection may hold this many subscriptions; a burst of 1,000 subscribes gets 50 answered
# with history and 950 `too_many_subscriptions` errors (each history is up to ~100 KB).
MAX_SUBSCRIPTIONS = 50
SCAN_PAGE_ITEMS = 250  # the key check's scan, a page at a time (connections_and_subscriptions)


@dataclass(frozen=True)
class Connection:
    connection_id: str
    key_id: str | None  # None: connected in open mode (no key existed)
    connected_at: int
    subscriptions: int = 0


@dataclass(frozen=True)
class Subscription:
    connection_id: str
    symbol: str
    timeframe: int
    key_id: str | None
    since: int | None = None  # the history's last bar: nothing older goes to this subscription


def sub_key(symbol: str, timeframe: int) -> str:
    return f"{SUB_PREFIX}{symbol}#{timeframe}"


def _subscription(item: dict) -> Subscription:
    return Subscription(
        connection_id=item["connection_id"],
        symbol=item["symbol"],
        timeframe=int(item["timeframe"]),
        key_id=item.get("key_id") or None,
        since=int(item["since"]) if item.get("since") is not None else None,
    )


class ConnectionStore:
    def __init__(
        self,
        table_name: str,
        *,
        max_subscriptions: int = MAX_SUBSCRIPTIONS,
        clock: Callable[[], float] = time.time,
    ):
        self.table_name = table_name
        self.max_subscriptions = max_subscriptions
        self.clock = clock

    @property
    def _table(self):
        return aws.table(self.table_name)

    def _expires_at(self, connected_at: int) -> int:
        return connected_at + MAX_CONNECTION_SECONDS + TTL_MARGIN_SECONDS

    # -- connections -----------------------------------------------------------------------
    def add_connection(self, connection_id: str, key_id: str | None) -> Connection:
        now = int(self.clock())
        item = {
            "connection_id": connection_id,
            "sk": META,
            "connected_at": now,
            "subs": 0,
            "expires_at": self._expires_at(now),
        }
        if key_id:
            item["key_id"] = key_id
        with translate("the connections table (DynamoDB)"):
            self._table.put_item(Item=item)
        return Connection(connection_id, key_id, now)

    def get(self, connection_id: str) -> Connection | None:
        with translate("the connections table (DynamoDB)"):
            item = self._table.get_item(
                Key={"connection_id": connection_id, "sk": META}, ConsistentRead=True
            ).get("Item")
        if not item:
            return None
        return Connection(
            connection_id,
            item.get("key_id") or None,
            int(item["connected_at"]),
            int(item.get("subs", 0)),
        )

    def remove_connection(self, connection_id: str) -> int:
        """Delete the connection and all its subscriptions. Returns how many items went."""
        table = self._table
        with translate("the connections table (DynamoDB)"):
            keys = []
            kwargs = {
                "KeyConditionExpression": Key("connection_id").eq(connection_id),
                "ProjectionExpression": "connection_id, sk",
            }
            while True:
                page = table.query(**kwargs)
                keys.extend({"connection_id": i["connection_id"], "sk": i["sk"]} for i in page["Items"])
                if "LastEvaluatedKey" not in page:
                    break
                kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
            with table.batch_writer() as batch:
                for key in keys:
                    batch.delete_item(Key=key)
        self._bump({_symbol_of(k["sk"]) for k in keys if k["sk"].startswith(SUB_PREFIX)})
        return len(keys)

    def connections(self) -> list[Connection]:
        """Every open connection."""
        return self.connections_and_subscriptions()[0]

    def connections_and_subscriptions(
        self, between_pages: Callable[[], object] | None = None
    ) -> tuple[list[Connection], list[Subscription]]:
        """Every open connection and every subscription, in one scan (the publisher's periodic
        key check; a filtered scan would read, and cost, the same items). Read SCAN_PAGE_ITEMS
        at a time, calling `between_pages` between pages: the publisher lets a batch of posts
        go first there (same read units: DynamoDB counts the items read, not the requests)."""
        connections: list[Connection] = []
        subscriptions: list[Subscription] = []
        kwargs: dict = {"Limit": SCAN_PAGE_ITEMS}
        with translate("the connections table (DynamoDB)"):
            while True:
                if between_pages is not None and "ExclusiveStartKey" in kwargs:
                    between_pages()
                page = self._table.scan(**kwargs)
                for i in page["Items"]:
                    if i["sk"] == META:
                        connections.append(
                            Connection(
                                i["connection_id"],
                                i.get("key_id") or None,
                                int(i["connected_at"]),
                                int(i.get("subs", 0)),
                            )
                        )
                    elif i["sk"].startswith(SUB_PREFIX) and i["connection_id"] != VERSIONS_PK:
                        subscriptions.append(_subscription(i))
                if "LastEvaluatedKey" not in page:
                    break
                kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        return connections, subscriptions

    # -- subscriptions ---------------------------------------------------------------------
    def subscribe(
        self, connection: Connection, symbol: str, timeframe: int, since: int | None = None
    ) -> bool:
        """Add a subscription; False when it already existed. Bounded per connection:
        the count on the meta item is raised under a condition, so a burst of concurrent
        subscribes cannot pass the bound. `since`: the time of the last bar of the history
        sent with it (the publisher sends nothing older)."""
        table = self._table
        errors = table.meta.client.exceptions
        item = {
            "connection_id": connection.connection_id,
            "sk": sub_key(symbol, timeframe),
            "symbol": symbol,
            "timeframe": timeframe,
            "expires_at": self._expires_at(connection.connected_at),
        }
        if since is not None:
            item["since"] = int(since)
        if connection.key_id:
            item["key_id"] = connection.key_id
        with translate("the connections table (DynamoDB)"):
            try:
                table.put_item(Item=item, ConditionExpression="attribute_not_exists(sk)")
            except errors.ConditionalCheckFailedException:
                return False
            try:
                table.update_item(
                    Key={"connection_id": connection.connection_id, "sk": META},
                    UpdateExpression="SET subs = if_not_exists(subs, :zero) + :one",
                    ConditionExpression="attribute_exists(sk) AND (attribute_not_exists(subs) OR subs < :max)",
                    ExpressionAttributeValues={":zero": 0, ":one": 1, ":max": self.max_subscriptions},
                )
            except errors.ConditionalCheckFailedException:
                table.delete_item(Key={"connection_id": connection.connection_id, "sk": item["sk"]})
                if self.get(connection.connection_id) is None:
                    raise NotFound(
                        "this connection is no longer registered; reconnect", code="unknown_connection"
                    ) from None
                raise self._too_many() from None
        self._bump({symbol})
        return True

    def check_room(self, connection: Connection, symbol: str, timeframe: int) -> None:
        """Raise too_many_subscriptions unless the subscription exists or there is room."""
        if connection.subscriptions < self.max_subscriptions:
            return
        with translate("the connections table (DynamoDB)"):
            exists = self._table.get_item(
                Key={"connection_id": connection.connection_id, "sk": sub_key(symbol, timeframe)}
            ).get("Item")
        if not exists:
            raise self._too_many()

    def _too_many(self) -> BadRequest:
        return BadRequest(
            f"at most {self.max_subscriptions} subscriptions per connection; "
            "unsubscribe from one first, or open another connection",
            code="too_many_subscriptions",
        )

    def unsubscribe(self, connection_id: str, symbol: str, timeframe: int) -> bool:
        """Remove a subscription; False when there was none."""
        table = self._table
        with translate("the connections table (DynamoDB)"):
            old = table.delete_item(
                Key={"connection_id": connection_id, "sk": sub_key(symbol, timeframe)},
                ReturnValues="ALL_OLD",
            ).get("Attributes")
            if not old:
                return False
            try:
                table.update_item(
                    Key={"connection_id": connection_id, "sk": META},
                    UpdateExpression="SET subs = subs - :one",
                    ConditionExpression="subs > :zero",
                    ExpressionAttributeValues={":zero": 0, ":one": 1},
                )
            except table.meta.client.exceptions.ConditionalCheckFailedException:
                pass  # the connection went away meanwhile; nothing left to count
        self._bump({symbol})
        return True

    def subscriptions(self, connection_id: str) -> list[Subscription]:
        with translate("the connections table (DynamoDB)"):
            items = self._table.query(
                KeyConditionExpression=Key("connection_id").eq(connection_id)
                & Key("sk").begins_with(SUB_PREFIX),
                ConsistentRead=True,
            )["Items"]
        return [_subscription(i) for i in items]

    def subscribers(self, symbol: str) -> list[Subscription]:
        """Every subscription to `symbol`, any timeframe (one query on the by_symbol index)."""
        out: list[Subscription] = []
        kwargs = {"IndexName": BY_SYMBOL_INDEX, "KeyConditionExpression": Key("symbol").eq(symbol)}
        with translate("the connections table (DynamoDB)"):
            while True:
                page = self._table.query(**kwargs)
                out.extend(_subscription(i) for i in page["Items"])
                if "LastEvaluatedKey" not in page:
                    break
                kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        return out

    # -- change versions ---------------------------------------------------------------------
    def _bump(self, symbols: set[str]) -> None:
        """Raise the version of each symbol whose subscribers changed (after the change, so a
        publisher that sees the new version also finds the change)."""
        table = self._table
        with translate("the connections table (DynamoDB)"):
            for symbol in sorted(symbols):
                table.update_item(
                    Key={"connection_id": VERSIONS_PK, "sk": symbol},
                    UpdateExpression="ADD version :one",
                    ExpressionAttributeValues={":one": 1},
                )

    def subscriber_versions(self) -> dict[str, int]:
        """symbol -> version of its subscriber list, for every symbol ever subscribed (one
        Query of a few bytes per symbol)."""
        out: dict[str, int] = {}
        # Eventually consistent: half the read units; a change missed by a lagging read is
        # seen by the next poll a second later.
        # The low-level client: the collector's publisher polls this every second, and the
        # resource layer's conversions cost it more CPU than the request itself.
        kwargs = {
            "TableName": self.table_name,
            "KeyConditionExpression": "connection_id = :versions",
            "ExpressionAttributeValues": {":versions": {"S": VERSIONS_PK}},
        }
        client = aws.client("dynamodb")
        with translate("the connections table (DynamoDB)"):
            while True:
                page = client.query(**kwargs)
                out.update((i["sk"]["S"], int(i.get("version", {}).get("N", 0))) for i in page["Items"])
                if "LastEvaluatedKey" not in page:
                    break
                kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        return out


def _symbol_of(sk: str) -> str:
    return sk[len(SUB_PREFIX) :].rsplit("#", 1)[0]
