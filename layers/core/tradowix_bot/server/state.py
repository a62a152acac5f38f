"""Small records in the state table (DynamoDB, key `pk`/`sk`): settings, collector records.

pk="settings"  sk="cookie-secret"         signing secret for browser session cookies
pk="upstream"  sk="collector#<owner>"     one collector's status, read (merged) by /api/live/status
"""

from __future__ import annotations

import math
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


# The forming bars of all symbols share one item: a write costs 1 write unit per started KB of
# it (≈ 60 bytes a symbol), not 1 per symbol, and a reader still needs one GetItem. An entry is
# one string (a list of numbers costs several times the CPU to build and send, every second).
FORMING_KEY = {"pk": {"S": "forming"}, "sk": {"S": "bars"}}
FORMING_PER_REQUEST = 50  # entries per UpdateItem: moto (the local emulator) recurses too deep on ~100


def forming_attribute(symbol: str) -> str:
    """The packed record's attribute for `symbol`: '#' never starts a symbol, so no symbol
    (not even one named "pk") can collide with the item's own attributes."""
    return "#" + symbol


def _n(value) -> dict:
    return {"N": str(Decimal(str(value)))}  # as boto3 writes numbers: never "1e-05"


def _forming_entry(text) -> tuple[float, tuple] | None:
    """A packed entry "valid_until,t,o,h,l,c[,v]" → (valid_until, bar); None when it is not one."""
    if not isinstance(text, str):
        return None
    try:
        fields = [float(x) for x in text.split(",")]
    except ValueError:
        return None
    if len(fields) not in (6, 7) or not all(math.isfinite(x) for x in fields):
        return None
    valid_until, t, *prices = fields
    return valid_until, (int(t), *prices[:4], *(int(v) for v in prices[4:]))


class StateStore:
    def __init__(self, table_name: str):
        self.table_name = table_name
        self._secret: str | None = None
        self._lock = threading.Lock()

    @property
    def _table(self):
        return aws.table(self.table_name)

    @property
    def _client(self):
        """The plain low-level client (typed values as DynamoDB's JSON): the collector's
        per-second records skip the resource layer's type conversions."""
        return aws.client("dynamodb")

    def get(self, pk: str, sk: str) -> dict | None:
        with translate("the state store (DynamoDB)"):
            item = self._table.get_item(Key={"pk": pk, "sk": sk}, ConsistentRead=True).get("Item")
        return _plain(item) if item else None

    def put(self, pk: str, sk: str, data: dict) -> None:
        with translate("the state store (DynamoDB)"):
            self._table.put_item(Item={"pk": pk, "sk": sk, **_dynamo(data)})

    def cookie_secret(self, *, create: bool = True) -> str | None:
        """The per-deployment signing secret, created on first use (first writer wins). With
        create=False (readers that may not write, e.g. the WebSocket function), None until the
        partner API has created it: no session can have been signed before."""
        if self._secret:
            return self._secret
        with self._lock:
            if self._secret:
                return self._secret
            item = self.get("settings", "cookie-secret")
            if item is None and not create:
                return None
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
    # pk="forming"   sk="bars"    every symbol's forming 1m bar, packed in one item:
    #                             {"#SYMBOL": "valid_until,t,o,h,l,c(,v)", ..., "expires_at"}
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
        """The forming bar of `symbol`, or None when there is none or its writer stopped renewing it.
        One consistent GetItem of the packed record, projected to this symbol's entry."""
        with translate("the state store (DynamoDB)"):
            item = self._client.get_item(
                TableName=self.table_name,
                Key=FORMING_KEY,
                ProjectionExpression="#s",
                ExpressionAttributeNames={"#s": forming_attribute(symbol)},
                ConsistentRead=True,
            ).get("Item")
        entry = _forming_entry((item or {}).get(forming_attribute(symbol), {}).get("S"))
        if entry is None:
            return None
        now = time.time() if now is None else now
        valid_until, bar = entry
        if valid_until < now:  # its writer stopped renewing it
            return None
        return bar

    def write_forming(
        self, bars: dict[str, tuple], valid_for: float, now: float | None = None, *, remove=()
    ) -> None:
        """Write the forming bars of several symbols into the packed record, and take out those
        of `remove` (their writer stopped: link dropped, lease lost, collector stopping). One
        UpdateItem per FORMING_PER_REQUEST symbols: the entries of symbols not named stay as
        they are (another collector's), and the write costs the record's size in write units
        (1 per started KB) however many symbols it names."""
        now = time.time() if now is None else now
        valid_until = repr(round(now + valid_for, 3))
        sets = [
            (
                forming_attribute(s),
                ",".join(
                    [
                        valid_until,
                        str(int(b[0])),
                        *(repr(float(x)) for x in b[1:5]),
                        *(str(int(v)) for v in b[5:]),
                    ]
                ),
            )
            for s, b in bars.items()
        ]
        removes = [forming_attribute(s) for s in remove if s not in bars]
        client = self._client
        while sets or removes:
            chunk_sets, sets = sets[:FORMING_PER_REQUEST], sets[FORMING_PER_REQUEST:]
            room = FORMING_PER_REQUEST - len(chunk_sets)
            chunk_removes, removes = removes[:room], removes[room:]
            names = {"#x": "expires_at"}  # the TTL: DynamoDB deletes the item once every writer is gone
            values = {":x": _n(int(now + max(valid_for, 180)))}
            set_actions = ["#x = :x"]
            for i, (name, entry) in enumerate(chunk_sets):
                names[f"#s{i}"], values[f":s{i}"] = name, {"S": entry}
                set_actions.append(f"#s{i} = :s{i}")
            expression = "SET " + ", ".join(set_actions)
            for i, name in enumerate(chunk_removes):
                names[f"#r{i}"] = name
            if chunk_removes:
                expression += " REMOVE " + ", ".join(f"#r{i}" for i in range(len(chunk_removes)))
            with translate("the state store (DynamoDB)"):
                client.update_item(
                    TableName=self.table_name,
                    Key=FORMING_KEY,
                    UpdateExpression=expression,
                    ExpressionAttributeNames=names,
                    ExpressionAttributeValues=values,
                )

    def delete_forming(self, symbols) -> None:
        """The writer stopped (link dropped, lease lost, collector stopping): its forming bars go."""
        if symbols:
            self.write_forming({}, 0, remove=symbols)

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
        """Take or renew the lease `name` for `owner`; False when someone else holds it unexpired.
        (The low-level client: a collector renews one lease per symbol every few seconds.)"""
        now = time.time() if now is None else now
        client = self._client
        with translate("the state store (DynamoDB)"):
            try:
                client.put_item(
                    TableName=self.table_name,
                    Item={
                        "pk": {"S": "lease"},
                        "sk": {"S": name},
                        "owner": {"S": owner},
                        "expires_at": _n(float(now + seconds)),
                    },
                    ConditionExpression="attribute_not_exists(pk) OR expires_at < :now OR #o = :me",
                    ExpressionAttributeNames={"#o": "owner"},
                    ExpressionAttributeValues={":now": _n(float(now)), ":me": {"S": owner}},
                )
            except client.exceptions.ConditionalCheckFailedException:
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
