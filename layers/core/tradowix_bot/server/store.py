"""The candle store: 1-minute bars in S3, one gzip'd JSON object per symbol per UTC day.

    candles/1m/<SYMBOL>/<YYYY-MM-DD>.json.gz   {"symbol", "day", "bars": [[t, o, h, l, c(, v)], ...]}
    catalog/symbols.json                       the symbol catalog with categories

Why: past days never change, so a warm reader keeps them decoded in memory and only
re-reads objects whose ETag moved (one LIST per request tells); today's object stays
small to rewrite; retention is an S3 lifecycle rule on the prefix. gzip'd rows measured
16.9 bytes per bar (BTCUSD, 7 significant digits) against 84 for plain JSON.

A row has a 6th element, the minute's tick count, when the collector knew it; days stored
before volume existed have 5-element rows and stay readable (their bars have no volume).
"""

from __future__ import annotations

import datetime as dt
import gzip
import re
import threading
import time
import zlib
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import orjson

from ..candles import merge, plain, valid_bar
from ..symbols import SymbolInfo, catalog_from_dicts
from . import aws
from .logs import get_logger
from .storage_errors import translate

DAY = 86400
CANDLE_PREFIX = "candles/1m/"
CATALOG_KEY = "catalog/symbols.json"
# A day can still be written this long after it ends (the last minute's bar lands ~0.5 s after
# midnight; a short outage delays it): readers with a listing cache re-validate it meanwhile.
LIVE_GRACE = 300

log = get_logger("candle-store")


def day_of(ts: int) -> str:
    return dt.datetime.fromtimestamp(ts - ts % DAY, dt.UTC).strftime("%Y-%m-%d")


def day_start(day: str) -> int:
    return int(dt.datetime.strptime(day, "%Y-%m-%d").replace(tzinfo=dt.UTC).timestamp())


def object_key(symbol: str, day: str) -> str:
    return f"{CANDLE_PREFIX}{symbol}/{day}.json.gz"


def encode_day(symbol: str, day: str, bars: Iterable[tuple]) -> bytes:
    doc = {"symbol": symbol, "day": day, "bars": [plain(b) for b in bars]}
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
        if valid_bar(values):
            bars.append(tuple(values))
    return bars


@dataclass(frozen=True)
class StoredRange:
    """What `read_range` found: the bars, which stored versions they came from, and the bounds
    of everything stored for the symbol (not only the range)."""

    bars: list[tuple] | None  # None: the symbol has no stored data at all
    versions: tuple[tuple[str, str], ...] = ()  # (day, ETag) of every day object read
    first: int | None = None  # time of the oldest stored bar
    last: int | None = None  # time of the newest stored bar
    days: tuple[list[tuple], ...] = ()  # the (cached) bar lists of the days in the range, in order


class CandleStore:
    """Reads and writes day objects.

    `index_seconds` (readers only, e.g. the partner API): 0 lists the symbol's day objects on
    every read (what writers and repair need: always exact). Above 0, that listing is kept
    that long, and the days that can still change (today, and yesterday for LIVE_GRACE after
    midnight) are re-validated on every read with one conditional GET instead (304 when
    unchanged): a LIST costs $5 per million and ~5 ms, a GET $0.40 per million. A past day
    rewritten later (gap repair) is then seen within `index_seconds`.
    """

    def __init__(
        self,
        bucket: str,
        *,
        cache_entries: int = 64,
        index_seconds: float = 0.0,
        clock: Callable[[], float] = time.time,
    ):
        self.bucket = bucket
        self._cache: OrderedDict[str, tuple[str, list[tuple]]] = OrderedDict()
        self._cache_entries = cache_entries
        self._index_seconds = index_seconds
        # symbol -> (listed at, {day: etag}); bounded: any valid symbol name can be asked for
        self._index: OrderedDict[str, tuple[float, dict[str, str]]] = OrderedDict()
        self._index_entries = max(256, 4 * cache_entries)
        self._clock = clock
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

    def _remember(self, key: str, etag: str, bars: list[tuple]) -> None:
        with self._lock:
            self._cache[key] = (etag, bars)
            self._cache.move_to_end(key)
            while len(self._cache) > self._cache_entries:  # a long-running process stays bounded
                self._cache.popitem(last=False)

    def _get(self, symbol: str, day: str, if_none_match: str | None = None) -> tuple[str, list[tuple]] | None:
        """GET a day object: (etag, bars); None when it does not exist; the cached entry on 304."""
        from botocore.exceptions import ClientError

        key = object_key(symbol, day)
        kwargs = {"Bucket": self.bucket, "Key": key}
        if if_none_match:
            kwargs["IfNoneMatch"] = if_none_match
        with translate("the candle store (S3)"):
            try:
                obj = self._s3.get_object(**kwargs)
            except self._s3.exceptions.NoSuchKey:
                return None
            except ClientError as exc:
                if exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") != 304:
                    raise
                with self._lock:
                    return self._cache.get(key)
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
        self._remember(key, obj["ETag"], bars)
        return obj["ETag"], bars

    def _known_corrupt(self, symbol: str, day: str, etag: str | None) -> None:
        """Raise CorruptDay (already reported) when `etag` is that of a day object found corrupt."""
        if etag is not None and self._corrupt.get(object_key(symbol, day)) == etag:
            raise CorruptDay(symbol, day, "unchanged since it was found", known=True)

    def _day_bars(self, symbol: str, day: str, etag: str | None) -> list[tuple]:
        """The day's bars; raises CorruptDay when its object cannot be decoded."""
        key = object_key(symbol, day)
        with self._lock:
            hit = self._cache.get(key)
            if hit and etag is not None and hit[0] == etag:
                self._cache.move_to_end(key)
                return hit[1]
        self._known_corrupt(symbol, day, etag)
        got = self._get(symbol, day)
        return got[1] if got else []

    def _versioned_day(
        self, symbol: str, day: str, listed_etag: str | None, live: bool
    ) -> tuple[str, list[tuple]] | None:
        key = object_key(symbol, day)
        with self._lock:
            hit = self._cache.get(key)
        if live:  # may have changed since listed: one conditional GET tells
            return self._get(symbol, day, hit[0] if hit else None)
        if hit and hit[0] == listed_etag:
            with self._lock:
                self._cache.move_to_end(key)
            return hit
        self._known_corrupt(symbol, day, listed_etag)
        return self._get(symbol, day)

    def _days(self, symbol: str) -> tuple[dict[str, str | None], set[str]]:
        """The days to consider ({day: listed etag or None}) and which of them are live."""
        now = self._clock()
        if self._index_seconds <= 0:
            return dict(self.list_days(symbol)), set()
        listed_at, days = self._index.get(symbol, (float("-inf"), {}))
        if now - listed_at >= self._index_seconds:
            days = self.list_days(symbol)
            self._index[symbol] = (now, days)
            self._index.move_to_end(symbol)
            while len(self._index) > self._index_entries:
                self._index.popitem(last=False)
        live = {day_of(int(now)), day_of(int(now - LIVE_GRACE))}
        return {**days, **{d: days.get(d) for d in live}}, live

    def read_range(
        self, symbol: str, start: int | None = None, end: int | None = None, *, with_bounds: bool = False
    ) -> StoredRange:
        """Stored 1m bars with start <= time < end, oldest first, and the versions they came
        from; `with_bounds` also finds the oldest and newest stored bar (reading the oldest
        day object once, then from the cache). `bars` is None when the symbol has no data. A day
        object that cannot be decoded is served around (its minutes are missing from the answer,
        every other day answers) until the collector rebuilds it."""
        days, live = self._days(symbol)
        lo = start if start is not None else 0
        hi = end if end is not None else 1 << 62
        loaded: dict[str, list[tuple]] = {}
        versions: list[tuple[str, str]] = []

        def load(day: str) -> list[tuple]:
            if day not in loaded:
                try:
                    got = self._versioned_day(symbol, day, days[day], day in live)
                except CorruptDay as exc:  # served around until the collector rebuilds it
                    if not exc.known:  # once per damaged object, not once per request
                        log.warning("stored day cannot be read; serving around it", extra={"error": str(exc)})
                    got = None
                loaded[day] = got[1] if got else []
                if got:
                    versions.append((day, got[0]))
            return loaded[day]

        ordered = sorted(days)
        out: list[tuple] = []
        in_range: list[list[tuple]] = []
        for day in ordered:
            if day_start(day) + DAY <= lo or day_start(day) >= hi:
                continue
            bars = load(day)
            in_range.append(bars)
            out.extend(bars if start is None and end is None else [b for b in bars if lo <= b[0] < hi])
        first = last = None
        if with_bounds:
            first = next((load(d)[0][0] for d in ordered if load(d)), None)
            last = next((load(d)[-1][0] for d in reversed(ordered) if load(d)), None)
        exists = any(days[d] is not None for d in days) or any(loaded.values())
        return StoredRange(out if exists else None, tuple(sorted(versions)), first, last, tuple(in_range))

    def read(self, symbol: str, start: int | None = None, end: int | None = None) -> list[tuple] | None:
        """Stored 1m bars, oldest first, with start <= time < end; None when the symbol has no data."""
        return self.read_range(symbol, start, end).bars

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
            self._remember(object_key(symbol, day), resp["ETag"], merged)
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
        self._index.pop(symbol, None)
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
