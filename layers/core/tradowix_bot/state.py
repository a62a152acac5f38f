"""Small records in the state table (DynamoDB, key `pk`/`sk`): settings, upstream status.

pk="settings"  sk="cookie-secret"   signing secret for browser session cookies
pk="upstream"  sk="status"          written by the collector, read by /api/live/status
"""

from __future__ import annotations

import secrets
import threading
import time
from decimal import Decimal

from . import aws
from .candles import plain
from .storage_errors import translate


def _plain(value):
    """DynamoDB returns Decimals; give JSON-friendly numbers back."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _dynamo(value):
    if isinstance(value, float):
        return Decimal(str(value))
    if isinstance(value, dict):
        return {k: _dynamo(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_dynamo(v) for v in value]
    return value


class StateStore:
    def __init__(self, table_name: str):
        self.table_name = table_name
        self._secret: str | None = None
        self._lock = threading.Lock()

    @property
    def _table(self):
        return aws.resource("dynamodb").Table(self.table_name)

    def get(self, pk: str, sk: str) -> dict | None:
        with translate("the state store (DynamoDB)"):
            item = self._table.get_item(Key={"pk": pk, "sk": sk}, ConsistentRead=True).get("Item")
        return _plain(item) if item else None

    def put(self, pk: str, sk: str, data: dict) -> None:
        with translate("the state store (DynamoDB)"):
            self._table.put_item(Item={"pk": pk, "sk": sk, **_dynamo(data)})

    def cookie_secret(self) -> str:
        """The per-deployment signing secret, created on first use (first writer wins)."""
        if self._secret:
            return self._secret
        with self._lock:
            if self._secret:
                return self._secret
            item = self.get("settings", "cookie-secret")
            if item is None:
                candidate = secrets.token_urlsafe(48)
                table = self._table
                with translate("the state store (DynamoDB)"):
                    try:
                        table.put_item(
                            Item={"pk": "settings", "sk": "cookie-secret", "value": candidate},
                            ConditionExpression="attribute_not_exists(pk)",
                        )
                    except table.meta.client.exceptions.ConditionalCheckFailedException:
                        pass
                item = self.get("settings", "cookie-secret")
            self._secret = item["value"]
            return self._secret

    def upstream_status(self) -> dict | None:
        return self.get("upstream", "status")

    def write_upstream_status(self, status: dict) -> None:
        self.put("upstream", "status", {**status, "updated_at": round(time.time(), 3)})

    # -- collector records -----------------------------------------------------------------
    # pk="forming" sk=SYMBOL   the forming 1m bar: {"bar": [t, o, h, l, c(, volume)], "expires_at"}
    # pk="lease"   sk=SYMBOL   the one collector allowed to write SYMBOL: {"owner", "expires_at"}
    # Both carry `expires_at` (the table's TTL attribute), so a dead collector's records vanish.

    def forming_bar(self, symbol: str, now: float | None = None) -> tuple | None:
        """The forming bar of `symbol`, or None when there is none or it has expired."""
        item = self.get("forming", symbol)
        now = time.time() if now is None else now
        if not item or float(item.get("expires_at", 0)) < now or len(item.get("bar") or []) not in (5, 6):
            return None
        return tuple(item["bar"])

    def write_forming(self, bars: dict[str, tuple], ttl_seconds: int, now: float | None = None) -> None:
        """Write the forming bars of several symbols (batched: 25 items per request)."""
        now = time.time() if now is None else now
        expires = int(now + ttl_seconds)
        with translate("the state store (DynamoDB)"), self._table.batch_writer() as batch:
            for symbol, bar in bars.items():
                batch.put_item(
                    Item={
                        "pk": "forming",
                        "sk": symbol,
                        "bar": _dynamo([float(x) for x in plain(bar)]),
                        "updated_at": _dynamo(round(now, 3)),
                        "expires_at": expires,
                    }
                )

    def acquire_lease(self, name: str, owner: str, seconds: float, now: float | None = None) -> bool:
        """Take or renew the lease `name` for `owner`; False when someone else holds it unexpired."""
        now = time.time() if now is None else now
        table = self._table
        with translate("the state store (DynamoDB)"):
            try:
                table.put_item(
                    Item={"pk": "lease", "sk": name, "owner": owner, "expires_at": _dynamo(now + seconds)},
                    ConditionExpression="attribute_not_exists(pk) OR expires_at < :now OR #o = :me",
                    ExpressionAttributeNames={"#o": "owner"},
                    ExpressionAttributeValues={":now": _dynamo(float(now)), ":me": owner},
                )
            except table.meta.client.exceptions.ConditionalCheckFailedException:
                return False
        return True

    def release_lease(self, name: str, owner: str) -> None:
        table = self._table
        with translate("the state store (DynamoDB)"):
            try:
                table.delete_item(
                    Key={"pk": "lease", "sk": name},
                    ConditionExpression="#o = :me",
                    ExpressionAttributeNames={"#o": "owner"},
                    ExpressionAttributeValues={":me": owner},
                )
            except table.meta.client.exceptions.ConditionalCheckFailedException:
                pass
