"""Small records in the state table (DynamoDB, key `pk`/`sk`): settings, collector records.

pk="settings"  sk="cookie-secret"         signing secret for browser session cookies
pk="upstream"  sk="collector#<owner>"     one collector's status, read (merged) by /api/live/status
"""

from __future__ import annotations

import secrets
import threading
import time
from decimal import Decimal

from . import aws
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

    # -- collector records -----------------------------------------------------------------
    # pk="upstream"  sk="collector#<owner>"  a collector's status: {..., "updated_at", "valid_until"}
    # pk="forming"   sk=SYMBOL    the forming 1m bar: {"bar": [t, o, h, l, c(, v)], "valid_until"}
    # pk="lease"     sk=SYMBOL    the one collector allowed to write SYMBOL: {"owner", "expires_at"}
    # pk="collector" sk=<owner>   a running collector's heartbeat: {"expires_at"}
    # `valid_until` is when the writer must have renewed the record (else it is gone: never
    # served); `expires_at` (the table's TTL attribute) lets DynamoDB delete what is left.

    def collector_statuses(self) -> list[dict]:
        """Every collector's status record (fresh or not: the reader decides)."""
        return [item for item in self._query("upstream") if str(item.get("sk", "")).startswith("collector#")]

    def upstream_status(self) -> dict | None:
        """The most recent collector status record (the owner's view), or None."""
        records = self.collector_statuses()
        if not records:
            return self.get("upstream", "status")  # written by versions before per-collector records
        return max(records, key=lambda r: float(r.get("updated_at", 0)))

    def write_collector_status(self, owner: str, status: dict, now: float, valid_for: float) -> None:
        self.put(
            "upstream",
            f"collector#{owner}",
            {
                **status,
                "owner": owner,
                "updated_at": round(now, 3),
                "valid_until": round(now + valid_for, 3),
                "expires_at": int(now + 86400),
            },
        )

    def write_upstream_status(self, status: dict, now: float | None = None) -> None:
        now = time.time() if now is None else now
        self.write_collector_status(str(status.get("owner") or "unknown"), status, now, 90)

    def heartbeat(self, owner: str, seconds: float, now: float, symbols=()) -> dict[str, list[str]]:
        """Say `owner` runs for `seconds` more, for `symbols`; returns every running collector
        with its symbols."""
        self.put(
            "collector", owner, {"expires_at": _dynamo(float(now + seconds)), "symbols": sorted(symbols)}
        )
        return {
            str(item["sk"]): list(item.get("symbols") or [])
            for item in self._query("collector")
            if float(item.get("expires_at", 0)) >= now
        }

    def forming_bar(self, symbol: str, now: float | None = None) -> tuple | None:
        """The forming bar of `symbol`, or None when there is none or its writer stopped renewing it."""
        item = self.get("forming", symbol)
        now = time.time() if now is None else now
        if not item or len(item.get("bar") or []) not in (5, 6):
            return None
        if float(item.get("valid_until", item.get("expires_at", 0))) < now:
            return None
        bar = item["bar"]
        return (int(bar[0]), *bar[1:5], *(int(v) for v in bar[5:]))

    def write_forming(self, bars: dict[str, tuple], valid_for: float, now: float | None = None) -> None:
        """Write the forming bars of several symbols (batched: 25 items per request)."""
        now = time.time() if now is None else now
        with translate("the state store (DynamoDB)"), self._table.batch_writer() as batch:
            for symbol, bar in bars.items():
                batch.put_item(
                    Item={
                        "pk": "forming",
                        "sk": symbol,
                        "bar": _dynamo(
                            [int(bar[0]), *(float(x) for x in bar[1:5]), *(int(v) for v in bar[5:])]
                        ),
                        "updated_at": _dynamo(round(now, 3)),
                        "valid_until": _dynamo(round(now + valid_for, 3)),
                        "expires_at": int(now + max(valid_for, 180)),
                    }
                )

    def delete_forming(self, symbols) -> None:
        """The writer stopped (link dropped, lease lost, collector stopping): its forming bars go."""
        with translate("the state store (DynamoDB)"), self._table.batch_writer() as batch:
            for symbol in symbols:
                batch.delete_item(Key={"pk": "forming", "sk": symbol})

    def _query(self, pk: str) -> list[dict]:
        from boto3.dynamodb.conditions import Key

        items: list[dict] = []
        kwargs = {"KeyConditionExpression": Key("pk").eq(pk), "ConsistentRead": True}
        with translate("the state store (DynamoDB)"):
            while True:
                page = self._table.query(**kwargs)
                items.extend(_plain(item) for item in page.get("Items", []))
                if "LastEvaluatedKey" not in page:
                    return items
                kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

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

    def leases(self) -> dict[str, tuple[str, float]]:
        """Every lease: name → (owner, expires_at). One read instead of a write per free symbol."""
        return {
            str(i["sk"]): (str(i.get("owner")), float(i.get("expires_at", 0))) for i in self._query("lease")
        }

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
