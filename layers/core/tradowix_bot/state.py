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
