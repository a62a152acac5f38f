"""Partner API keys in DynamoDB.

Only a SHA-256 of each key is stored (keys carry 256 bits of randomness, so a plain hash is
enough; no salt or slow hash is needed). Readers keep a snapshot of the whole table and
refresh it at most every `cache_seconds` (default 30): that is the documented bound within
which a disabled or deleted key stops working on a warm function.

A key works as soon as the command that created it returns: every change to the table also
bumps one small version item (`key_id = "#version"`), and a reader that would refuse a key
(unknown, disabled, or no key at all in open mode) first reads that item (one consistent
GetItem, 1 read unit) and reloads the table only when the version moved. So a flood of bad
keys costs one small read each and never a table scan.
"""

from __future__ import annotations

import contextlib
import hashlib
import secrets
import threading
import time
from dataclasses import dataclass, field

from ..errors import BadRequest, DomainError, Forbidden, NotFound, Unauthorized, Unavailable
from . import aws
from .ratelimit import validate_per_minute
from .storage_errors import translate

KEY_PREFIX = "twk_"
# Not a key: bumped by every change to the table (see the module docstring). Key ids are
# "key_" + hex, so this id can never collide with one.
VERSION_ITEM_ID = "#version"
# The owner's chart session (opened from the admin panel) is bound to "owner:<expires_at>": a
# key id no key can have either, reading every symbol until then.
OWNER_SESSION_PREFIX = "owner:"
_TOUCH_SECONDS = 60.0


def owner_session_id(expires_at: int) -> str:
    return f"{OWNER_SESSION_PREFIX}{int(expires_at)}"


def _owner_session(key_id: str) -> KeyRecord:
    try:
        expires_at = int(key_id.removeprefix(OWNER_SESSION_PREFIX))
    except ValueError:
        raise Unauthorized("invalid session cookie; sign in again", code="invalid_session") from None
    if expires_at <= time.time():
        raise Unauthorized(
            "the owner's chart session has ended; open the chart from the admin panel again",
            code="session_expired",
        )
    return KeyRecord(
        key_id=key_id, name="Owner (admin panel)", key_hash="", symbols=None, enabled=True, created_at=0
    )


def hash_key(raw_key: str) -> str:
    return hashlib.sha256(raw_key.encode()).hexdigest()


def new_raw_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)  # 43 URL-safe characters


@dataclass
class KeyRecord:
    key_id: str
    name: str
    key_hash: str
    symbols: list[str] | None  # None: every symbol
    enabled: bool
    created_at: int
    last_used_at: int | None = None
    rate_limit: int | None = None  # requests per minute; None: the deployment's default

    @property
    def all_symbols(self) -> bool:
        return self.symbols is None

    def may_read(self, symbol: str) -> bool:
        return self.symbols is None or symbol in self.symbols

    def public(self) -> dict:
        """What admins see: never the hash, never the key."""
        return {
            "key_id": self.key_id,
            "name": self.name,
            "all_symbols": self.all_symbols,
            "symbols": list(self.symbols or []),
            "enabled": self.enabled,
            "created_at": self.created_at,
            "last_used_at": self.last_used_at,
            "rate_limit": self.rate_limit,
        }

    @classmethod
    def from_item(cls, item: dict) -> KeyRecord:
        symbols = item.get("symbols")
        return cls(
            key_id=item["key_id"],
            name=item.get("name", ""),
            key_hash=item["key_hash"],
            symbols=None if symbols is None else sorted(symbols),
            enabled=bool(item.get("enabled", True)),
            created_at=int(item.get("created_at", 0)),
            last_used_at=int(item["last_used_at"]) if item.get("last_used_at") is not None else None,
            rate_limit=int(item["rate_limit"]) if item.get("rate_limit") is not None else None,
        )

    def to_item(self) -> dict:
        item = {
            "key_id": self.key_id,
            "name": self.name,
            "key_hash": self.key_hash,
            "enabled": self.enabled,
            "created_at": self.created_at,
        }
        if self.symbols is not None:
            item["symbols"] = list(self.symbols)
        if self.rate_limit is not None:
            item["rate_limit"] = self.rate_limit
        return item


def _clean_symbols(symbols: list[str] | None) -> list[str] | None:
    from ..candles import validate_symbol

    if symbols is None:
        return None
    cleaned = sorted({validate_symbol(s.strip()) for s in symbols if s.strip()})
    if not cleaned:
        raise BadRequest("give at least one symbol, or allow all symbols", code="invalid_symbols")
    return cleaned


@contextlib.contextmanager
def _unreadable_is_unavailable():
    """A keys table that cannot be read (access denied, ...) is an outage (503), never "no keys"."""
    from botocore.exceptions import ClientError

    try:
        yield
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "error")
        raise Unavailable(f"the key store (DynamoDB) cannot be read ({code}); try again shortly") from exc


@dataclass
class _Snapshot:
    by_hash: dict[str, KeyRecord] = field(default_factory=dict)
    by_id: dict[str, KeyRecord] = field(default_factory=dict)
    loaded_at: float = float("-inf")
    version: int | None = None  # the version item as read just before the table was


class KeyRegistry:
    """Reads and manages keys. One instance per process; thread-safe."""

    def __init__(
        self,
        table_name: str,
        *,
        cache_seconds: float = 30.0,
        clock=time.monotonic,
        record_use: bool = True,
    ):
        self.table_name = table_name
        self.cache_seconds = cache_seconds
        # False for re-checks that are not a partner's use (the live publisher): they only read,
        # and the collector's role may not write the keys table.
        self.record_use = record_use
        self._clock = clock
        self._snapshot = _Snapshot()
        self._lock = threading.Lock()
        self._touched: dict[str, float] = {}

    @property
    def _table(self):
        return aws.table(self.table_name)

    # -- reading (cached) ----------------------------------------------------------------
    def _read_version(self) -> int:
        with _unreadable_is_unavailable(), translate("the key store (DynamoDB)"):
            item = self._table.get_item(Key={"key_id": VERSION_ITEM_ID}, ConsistentRead=True).get("Item")
        return int(item.get("version", 0)) if item else 0

    def _load(self) -> _Snapshot:
        # The version first: a change that lands during the scan bumps it after, so the next
        # check sees a newer version and reloads; read after the scan, it could hide that change.
        version = self._read_version()
        items: list[dict] = []
        with _unreadable_is_unavailable(), translate("the key store (DynamoDB)"):
            kwargs = {"ConsistentRead": True}
            while True:
                page = self._table.scan(**kwargs)
                items.extend(page.get("Items", []))
                if "LastEvaluatedKey" not in page:
                    break
                kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        records = [KeyRecord.from_item(i) for i in items if i.get("key_id") != VERSION_ITEM_ID]
        return _Snapshot(
            by_hash={r.key_hash: r for r in records},
            by_id={r.key_id: r for r in records},
            loaded_at=self._clock(),
            version=version,
        )

    def _current(self) -> _Snapshot:
        snap = self._snapshot
        if self._clock() - snap.loaded_at >= self.cache_seconds:
            with self._lock:
                if self._clock() - self._snapshot.loaded_at >= self.cache_seconds:
                    self._snapshot = self._load()
                snap = self._snapshot
        return snap

    def _changed_since(self, snap: _Snapshot) -> _Snapshot:
        """Before refusing on the strength of `snap`: the table as it is now, reloaded only when
        its version moved (one small read; the scan only after a real change)."""
        with self._lock:
            if self._snapshot is snap and self._read_version() != snap.version:
                self._snapshot = self._load()
            return self._snapshot

    def invalidate(self) -> None:
        self._snapshot = _Snapshot()

    def any_keys(self) -> bool:
        # Open mode must end as soon as a first key exists, not a cache period later.
        snap = self._current()
        return bool(snap.by_id) or bool(self._changed_since(snap).by_id)

    def authenticate(self, raw_key: str) -> KeyRecord:
        if not raw_key.startswith(KEY_PREFIX):
            raise Unauthorized("invalid API key: keys start with 'twk_'", code="invalid_key")
        digest = hash_key(raw_key)
        snap = self._current()
        record = snap.by_hash.get(digest)
        if record is None or not record.enabled:
            record = self._changed_since(snap).by_hash.get(digest)
        if record is None:
            raise Unauthorized("invalid API key", code="invalid_key")
        return self._usable(record)

    def authenticate_id(self, key_id: str) -> KeyRecord:
        if key_id.startswith(OWNER_SESSION_PREFIX):
            return _owner_session(key_id)
        snap = self._current()
        record = snap.by_id.get(key_id)
        if record is None or not record.enabled:
            record = self._changed_since(snap).by_id.get(key_id)
        if record is None:
            raise Unauthorized("this session's API key no longer exists; sign in again", code="invalid_key")
        return self._usable(record)

    def _usable(self, record: KeyRecord) -> KeyRecord:
        if not record.enabled:
            raise Unauthorized("this API key is disabled", code="key_disabled")
        self._touch(record)
        return record

    def _touch(self, record: KeyRecord) -> None:
        """Record last use, at most once a minute per key and process (cost, not precision)."""
        now = self._clock()
        if not self.record_use or now - self._touched.get(record.key_id, float("-inf")) < _TOUCH_SECONDS:
            return
        self._touched[record.key_id] = now
        try:
            self._table.update_item(
                Key={"key_id": record.key_id},
                UpdateExpression="SET last_used_at = :t",
                ConditionExpression="attribute_exists(key_id)",
                ExpressionAttributeValues={":t": int(time.time())},
            )
        except Exception:  # noqa: BLE001 - a failed bookkeeping write must not fail the request
            pass

    # -- admin operations (always read the table, never the cache) -------------------------
    def list(self) -> list[KeyRecord]:
        snap = self._load()
        self._snapshot = snap
        return sorted(snap.by_id.values(), key=lambda r: (r.created_at, r.key_id))

    def get(self, key_id: str) -> KeyRecord:
        _not_the_version_item(key_id)
        with translate("the key store (DynamoDB)"):
            item = self._table.get_item(Key={"key_id": key_id}, ConsistentRead=True).get("Item")
        if not item:
            raise NotFound(f"no API key with id {key_id!r}", code="key_not_found")
        return KeyRecord.from_item(item)

    def create(
        self, name: str, symbols: list[str] | None = None, rate_limit: int | None = None
    ) -> tuple[KeyRecord, str]:
        """Create a key; returns the record and the raw key, which is never stored or shown again.
        `rate_limit`: requests per minute (None: the deployment's default)."""
        name = (name or "").strip()
        if not name or len(name) > 100:
            raise BadRequest("a key needs a name of 1 to 100 characters", code="invalid_name")
        raw = new_raw_key()
        record = KeyRecord(
            key_id="key_" + secrets.token_hex(6),
            name=name,
            key_hash=hash_key(raw),
            symbols=_clean_symbols(symbols),
            enabled=True,
            created_at=int(time.time()),
            rate_limit=validate_per_minute(rate_limit),
        )
        with translate("the key store (DynamoDB)"):
            self._table.put_item(Item=record.to_item(), ConditionExpression="attribute_not_exists(key_id)")
        try:
            self._bump_version()
        except DomainError:
            # Unannounced, the key would be refused for up to a cache period: take it back, so
            # the owner sees one clear failure and nothing half-made (the raw key was never shown).
            with contextlib.suppress(Exception):
                self._table.delete_item(Key={"key_id": record.key_id})
            raise
        self.invalidate()
        return record, raw

    def _bump_version(self) -> None:
        """Tell every reader that the table changed (after the change, never before)."""
        with translate("the key store (DynamoDB)"):
            self._table.update_item(
                Key={"key_id": VERSION_ITEM_ID},
                UpdateExpression="ADD version :one",
                ExpressionAttributeValues={":one": 1},
            )

    def _announce(self) -> None:
        # A change that revokes is bounded by the cache period anyway; a change that grants
        # (enable, wider symbols) is seen at once when this succeeds, else within that period.
        with contextlib.suppress(DomainError):
            self._bump_version()

    def _update(self, key_id: str, expression: str, values: dict | None = None) -> KeyRecord:
        _not_the_version_item(key_id)
        kwargs = {
            "Key": {"key_id": key_id},
            "UpdateExpression": expression,
            "ConditionExpression": "attribute_exists(key_id)",
            "ReturnValues": "ALL_NEW",
        }
        if values:
            kwargs["ExpressionAttributeValues"] = values
        table = self._table
        with translate("the key store (DynamoDB)"):
            try:
                item = table.update_item(**kwargs)["Attributes"]
            except table.meta.client.exceptions.ConditionalCheckFailedException:
                raise NotFound(f"no API key with id {key_id!r}", code="key_not_found") from None
        self._announce()
        self.invalidate()
        return KeyRecord.from_item(item)

    def set_enabled(self, key_id: str, enabled: bool) -> KeyRecord:
        return self._update(key_id, "SET enabled = :e", {":e": enabled})

    def restrict(self, key_id: str, symbols: list[str] | None) -> KeyRecord:
        cleaned = _clean_symbols(symbols)
        if cleaned is None:
            return self._update(key_id, "REMOVE symbols")
        return self._update(key_id, "SET symbols = :s", {":s": cleaned})

    def set_rate_limit(self, key_id: str, per_minute: int | None) -> KeyRecord:
        """Requests per minute for this key; None goes back to the deployment's default."""
        per_minute = validate_per_minute(per_minute)
        if per_minute is None:
            return self._update(key_id, "REMOVE rate_limit")
        return self._update(key_id, "SET rate_limit = :r", {":r": per_minute})

    def delete(self, key_id: str) -> None:
        _not_the_version_item(key_id)
        table = self._table
        with translate("the key store (DynamoDB)"):
            try:
                table.delete_item(Key={"key_id": key_id}, ConditionExpression="attribute_exists(key_id)")
            except table.meta.client.exceptions.ConditionalCheckFailedException:
                raise NotFound(f"no API key with id {key_id!r}", code="key_not_found") from None
        self._announce()
        self.invalidate()


def _not_the_version_item(key_id: str) -> None:
    if key_id == VERSION_ITEM_ID:
        raise NotFound(f"no API key with id {key_id!r}", code="key_not_found")


def require_symbol(record: KeyRecord | None, symbol: str) -> None:
    if record is not None and not record.may_read(symbol):
        raise Forbidden(f"this API key cannot access {symbol}", code="symbol_forbidden")
