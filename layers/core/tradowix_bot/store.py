"""The candle store: 1-minute bars in S3, one gzip'd JSON object per symbol per UTC day.

    candles/1m/<SYMBOL>/<YYYY-MM-DD>.json.gz   {"symbol", "day", "bars": [[t, o, h, l, c], ...]}
    catalog/symbols.json                       the symbol catalog with categories

Why: past days never change, so a warm reader keeps them decoded in memory and only
re-reads objects whose ETag moved (one LIST per request tells); today's object stays
small to rewrite; retention is an S3 lifecycle rule on the prefix. gzip'd rows measured
16.9 bytes per bar (BTCUSD, 7 significant digits) against 84 for plain JSON.
"""

from __future__ import annotations

import datetime as dt
import gzip
import re
import threading
import zlib
from collections import OrderedDict
from collections.abc import Iterable

import orjson

from . import aws
from .candles import merge
from .logs import get_logger
from .storage_errors import translate
from .symbols import SymbolInfo, catalog_from_dicts

DAY = 86400
CANDLE_PREFIX = "candles/1m/"
CATALOG_KEY = "catalog/symbols.json"

log = get_logger("candle-store")


def day_of(ts: int) -> str:
    return dt.datetime.fromtimestamp(ts - ts % DAY, dt.UTC).strftime("%Y-%m-%d")


def day_start(day: str) -> int:
    return int(dt.datetime.strptime(day, "%Y-%m-%d").replace(tzinfo=dt.UTC).timestamp())


def object_key(symbol: str, day: str) -> str:
    return f"{CANDLE_PREFIX}{symbol}/{day}.json.gz"


def encode_day(symbol: str, day: str, bars: Iterable[tuple]) -> bytes:
    doc = {"symbol": symbol, "day": day, "bars": [list(b) for b in bars]}
    return gzip.compress(orjson.dumps(doc), compresslevel=6, mtime=0)


class CorruptDay(Exception):
    """A stored day object that cannot be decoded (truncated, not gzip, not the day format)."""

    def __init__(self, symbol: str, day: str, reason: str, *, known: bool = False):
        super().__init__(f"{object_key(symbol, day)} cannot be read: {reason}")
        self.symbol = symbol
        self.day = day
        self.known = known  # already reported by this process


def decode_day(data: bytes) -> list[tuple]:
    return [tuple(b) for b in orjson.loads(gzip.decompress(data))["bars"]]


_BAR_TEXT = re.compile(rb"\[(-?\d+(?:,-?[0-9.eE+-]+){4,5})\]")


def salvage_day(data: bytes) -> list[tuple]:
    """The whole bars that can still be read from a damaged day object (a truncated gzip
    stream decodes up to where it was cut): nothing invented, nothing half-read."""
    try:
        text = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(data)
    except zlib.error:
        return []
    bars = []
    for match in _BAR_TEXT.finditer(text):
        try:
            values = orjson.loads(b"[" + match.group(1) + b"]")
        except orjson.JSONDecodeError:
            continue
        t, *prices = values
        if (
            isinstance(t, int)
            and t % 60 == 0
            and all(isinstance(p, int | float) and p > 0 for p in prices[:4])
        ):
            bars.append(tuple(values))
    return bars


class CandleStore:
    def __init__(self, bucket: str, *, cache_entries: int = 64):
        self.bucket = bucket
        self._cache: OrderedDict[str, tuple[str, list[tuple]]] = OrderedDict()
        self._cache_entries = cache_entries
        self._corrupt: dict[str, str] = {}  # key → ETag of a day object that cannot be decoded
        self._lock = threading.Lock()

    @property
    def _s3(self):
        return aws.client("s3")

    # -- reading -------------------------------------------------------------------------
    def list_days(self, symbol: str) -> dict[str, str]:
        """{day: etag} of the symbol's stored day objects."""
        days: dict[str, str] = {}
        prefix = f"{CANDLE_PREFIX}{symbol}/"
        with translate("the candle store (S3)"):
            for page in self._s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
                for obj in page.get("Contents", []):
                    name = obj["Key"][len(prefix) :]
                    if name.endswith(".json.gz"):
                        days[name[: -len(".json.gz")]] = obj["ETag"]
        return days

    def _day_bars(self, symbol: str, day: str, etag: str | None) -> list[tuple]:
        """The day's bars; raises CorruptDay when its object cannot be decoded."""
        key = object_key(symbol, day)
        with self._lock:
            hit = self._cache.get(key)
            if hit and etag is not None and hit[0] == etag:
                self._cache.move_to_end(key)
                return hit[1]
            if etag is not None and self._corrupt.get(key) == etag:
                raise CorruptDay(symbol, day, "unchanged since it was found", known=True)
        with translate("the candle store (S3)"):
            try:
                obj = self._s3.get_object(Bucket=self.bucket, Key=key)
            except self._s3.exceptions.NoSuchKey:
                return []
            data = obj["Body"].read()
        try:
            bars = decode_day(data)
        except (
            EOFError,
            OSError,
            zlib.error,
            orjson.JSONDecodeError,
            KeyError,
            TypeError,
            ValueError,
        ) as exc:
            with self._lock:
                self._corrupt[key] = obj["ETag"]
            raise CorruptDay(symbol, day, f"{type(exc).__name__}: {exc}") from None
        with self._lock:
            self._cache[key] = (obj["ETag"], bars)
            self._cache.move_to_end(key)
            while len(self._cache) > self._cache_entries:
                self._cache.popitem(last=False)
        return bars

    def read(self, symbol: str, start: int | None = None, end: int | None = None) -> list[tuple] | None:
        """Stored 1m bars, oldest first, with start <= time < end; None when the symbol has no data.

        A day object that cannot be decoded is served around (its minutes are missing from the
        answer, every other day answers) until the collector rebuilds it."""
        days = self.list_days(symbol)
        if not days:
            return None
        out: list[tuple] = []
        for day in sorted(days):
            first = day_start(day)
            if (start is not None and first + DAY <= start) or (end is not None and first >= end):
                continue
            try:
                bars = self._day_bars(symbol, day, days[day])
            except CorruptDay as exc:
                if not exc.known:  # once per damaged object, not once per request
                    log.warning("stored day cannot be read; serving around it", extra={"error": str(exc)})
                continue
            if start is not None or end is not None:
                lo = start if start is not None else 0
                hi = end if end is not None else 1 << 62
                bars = [b for b in bars if lo <= b[0] < hi]
            out.extend(bars)
        return out

    def symbols_with_data(self) -> list[str]:
        with translate("the candle store (S3)"):
            out = []
            for page in self._s3.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=CANDLE_PREFIX, Delimiter="/"
            ):
                out.extend(p["Prefix"][len(CANDLE_PREFIX) : -1] for p in page.get("CommonPrefixes", []))
        return sorted(out)

    # -- writing -------------------------------------------------------------------------
    def write(
        self,
        symbol: str,
        bars: Iterable[tuple],
        *,
        sole_writer: bool = False,
        replace_days: Iterable[str] = (),
    ) -> int:
        """Merge bars into their day objects (same minute replaces). Returns objects written.

        Each day object is written whole with one PUT, so a reader sees the old or the new
        day, never half of it. One writer per symbol is assumed (the collector's lease);
        `sole_writer=True` (the lease holder) trusts its cached copy of a day it wrote or read
        itself instead of GETting it again first: one request per closed minute, not two.
        A day in `replace_days` is written from `bars` alone (a corrupt object being rebuilt);
        merging into any other day that cannot be decoded raises CorruptDay, writing nothing.
        """
        replace = set(replace_days)
        by_day: dict[str, list[tuple]] = {}
        for b in bars:
            by_day.setdefault(day_of(int(b[0])), []).append(tuple(b))
        for day, new in sorted(by_day.items()):
            cached = self._cache.get(object_key(symbol, day)) if sole_writer else None
            if day in replace:
                current = []
            else:
                current = cached[1] if cached else self._day_bars(symbol, day, None)
            merged = merge(current, new)
            body = encode_day(symbol, day, merged)
            with translate("the candle store (S3)"):
                resp = self._s3.put_object(
                    Bucket=self.bucket,
                    Key=object_key(symbol, day),
                    Body=body,
                    ContentType="application/json",
                    ContentEncoding="gzip",
                )
            with self._lock:
                self._corrupt.pop(object_key(symbol, day), None)
                self._cache[object_key(symbol, day)] = (resp["ETag"], merged)
                self._cache.move_to_end(object_key(symbol, day))
                while len(self._cache) > self._cache_entries:  # a long-running writer stays bounded
                    self._cache.popitem(last=False)
        return len(by_day)

    def corrupt_days(self, symbol: str) -> list[str]:
        """The symbol's stored days whose objects cannot be decoded (each changed object is
        read once; unchanged ones are answered from the cache)."""
        days = self.list_days(symbol)
        bad = []
        for day in sorted(days):
            try:
                self._day_bars(symbol, day, days[day])
            except CorruptDay:
                bad.append(day)
        return bad

    def last_bar_time(self, symbol: str) -> int | None:
        """The newest stored minute, from the newest day that can be decoded."""
        days = self.list_days(symbol)
        for day in sorted(days, reverse=True):
            try:
                bars = self._day_bars(symbol, day, days[day])
            except CorruptDay:
                continue
            if bars:
                return int(bars[-1][0])
        return None

    def salvage(self, symbol: str, day: str) -> list[tuple]:
        """What can still be read from a corrupt day object (see `salvage_day`)."""
        with translate("the candle store (S3)"):
            try:
                obj = self._s3.get_object(Bucket=self.bucket, Key=object_key(symbol, day))
            except self._s3.exceptions.NoSuchKey:
                return []
            return salvage_day(obj["Body"].read())

    def forget(self, symbol: str) -> None:
        """Drop cached days of `symbol` (a lease just changed hands: another writer may have written)."""
        prefix = f"{CANDLE_PREFIX}{symbol}/"
        with self._lock:
            for key in [k for k in self._cache if k.startswith(prefix)]:
                del self._cache[key]

    def delete_day(self, symbol: str, day: str) -> None:
        """Delete one day object (a corrupt one that nothing could be rebuilt from)."""
        with translate("the candle store (S3)"):
            self._s3.delete_object(Bucket=self.bucket, Key=object_key(symbol, day))
        with self._lock:
            self._cache.pop(object_key(symbol, day), None)
            self._corrupt.pop(object_key(symbol, day), None)

    def delete_days_before(self, symbol: str, cutoff_day: str) -> list[str]:
        """Delete the symbol's day objects older than `cutoff_day` (retention on emulators)."""
        old = [d for d in self.list_days(symbol) if d < cutoff_day]
        with translate("the candle store (S3)"):
            for day in old:
                self._s3.delete_object(Bucket=self.bucket, Key=object_key(symbol, day))
        with self._lock:
            for day in old:
                self._cache.pop(object_key(symbol, day), None)
        return old

    # -- catalog -------------------------------------------------------------------------
    def read_catalog(self) -> list[SymbolInfo]:
        with translate("the candle store (S3)"):
            try:
                obj = self._s3.get_object(Bucket=self.bucket, Key=CATALOG_KEY)
            except self._s3.exceptions.NoSuchKey:
                return []
            return catalog_from_dicts(orjson.loads(obj["Body"].read())["symbols"])

    def write_catalog(self, infos: Iterable[SymbolInfo]) -> None:
        from dataclasses import asdict

        body = orjson.dumps({"symbols": [asdict(i) for i in infos]})
        with translate("the candle store (S3)"):
            self._s3.put_object(
                Bucket=self.bucket, Key=CATALOG_KEY, Body=body, ContentType="application/json"
            )
