"""What partners ask for: candles, symbols, timing, live status. Storage-agnostic domain logic."""

from __future__ import annotations

import hashlib
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlencode

import orjson

from ..candles import as_dicts, validate_symbol
from ..errors import BadRequest, NotFound, Unavailable
from ..resample import BASE_TIMEFRAME, bucket_start, validate_timeframe
from ..resample import resample as resample_bars
from ..symbols import DEFAULT_SYMBOLS, SymbolInfo, categories
from ..timing import bar_timing
from .authn import Caller
from .state import StateStore
from .store import CandleStore, StoredRange

# A forming-bar record is only valid while its writer renews it (seconds), and it is written at
# most a minute after the bar's time: a range ending before now - 240 s cannot hold a live
# forming bar, so that read is skipped.
FORMING_MAX_AGE = 240
# Unix seconds this large are milliseconds (1e11 s is the year 5138; 1e11 ms is 1973).
MAX_UNIX_SECONDS = 10**11 - 1
# Bumped when the answer's shape changes, so cached validators (ETags) of older shapes expire.
ANSWER_FORMAT = "candles/2"


def validate_unix_seconds(name: str, value: int | None) -> int | None:
    if value is None:
        return None
    if value < 0:
        raise BadRequest(f"{name} must be unix seconds, 0 or more (got {value})", code=f"invalid_{name}")
    if value > MAX_UNIX_SECONDS:
        raise BadRequest(
            f"{name}={value} looks like milliseconds: send unix seconds (e.g. {value // 1000})"
            if value < 10**14
            else f"{name}={value} is not a unix time in seconds",
            code=f"invalid_{name}",
        )
    return value


@dataclass(frozen=True)
class CandlesAnswer:
    """One candles answer before it is shaped for JSON: the version (ETag) is known without
    building or hashing the body, so an unchanged answer can be a 304 at the cost of the reads."""

    symbol: str
    timeframe: int
    bars: list[tuple]
    now: float
    next: str | None
    stored: StoredRange
    forming: tuple | None

    @property
    def has_more(self) -> bool:
        return self.next is not None

    @property
    def last_closed(self) -> bool:
        # The newest bar is closed once its bucket is over and no forming minute is part of it:
        # a forming bar is never reported closed, even after its minute (its writer decides).
        if not self.bars:
            return True
        last = self.bars[-1][0]
        forming_in_last = self.forming is not None and last <= self.forming[0] < last + self.timeframe
        return last + self.timeframe <= self.now and not forming_in_last

    @property
    def available_from(self) -> int | None:
        times = [t for t in (self.stored.first, self.forming and int(self.forming[0])) if t is not None]
        return min(times) if times else None

    @property
    def available_to(self) -> int | None:
        times = [t for t in (self.stored.last, self.forming and int(self.forming[0])) if t is not None]
        return max(times) if times else None

    @property
    def version(self) -> str:
        """A digest of everything the body says except `timing` (which changes every call): the
        stored objects read, the forming bar, the selection and the clock-dependent flag."""
        first, last = (self.bars[0][0], self.bars[-1][0]) if self.bars else (None, None)
        identity = (
            ANSWER_FORMAT,
            self.symbol,
            self.timeframe,
            len(self.bars),
            first,
            last,
            self.next,
            self.stored.versions,
            self.forming,
            self.last_closed,
        )
        return hashlib.blake2b(repr(identity).encode(), digest_size=16).hexdigest()

    def as_dict(self, *, candles: bool = True) -> dict:
        return {
            "symbol": self.symbol,
            "timeframe": self.timeframe,
            "base_timeframe": BASE_TIMEFRAME,
            "count": len(self.bars),
            "candles": as_dicts(self.bars) if candles else [],
            "last_closed": self.last_closed,
            "has_more": self.has_more,
            "next": self.next,
            "available_from": self.available_from,
            "available_to": self.available_to,
            "timing": bar_timing(self.symbol, self.timeframe, self.now),
        }

    def body(self, encoded_days: EncodedDays | None = None) -> bytes:
        """The answer as JSON bytes, equal to `orjson.dumps(self.as_dict())`. With `encoded_days`,
        whole stored days of 1m bars are spliced in already encoded."""
        head = orjson.dumps(self.as_dict(candles=False))
        # The symbol's pattern cannot hold a quote: this is the one "candles" key.
        return head.replace(b'"candles":[]', b'"candles":[' + self._encoded_bars(encoded_days) + b"]", 1)

    def _encoded_bars(self, encoded_days: EncodedDays | None) -> bytes:
        bars = self.bars
        if encoded_days is None or self.timeframe != BASE_TIMEFRAME:
            return orjson.dumps(as_dicts(bars))[1:-1]
        # At 1m the page holds the stored days' own tuples, in order and contiguous: a day whose
        # first and last tuples are in the page at the right distance is in it whole.
        whole_days = {id(day[0]): day for day in self.stored.days if day}
        segments: list[bytes] = []
        loose: list[tuple] = []
        i = 0
        while i < len(bars):
            day = whole_days.get(id(bars[i]))
            end = i + len(day) if day is not None else 0
            if day is not None and day[0] is bars[i] and end <= len(bars) and bars[end - 1] is day[-1]:
                if loose:
                    segments.append(orjson.dumps(as_dicts(loose))[1:-1])
                    loose = []
                segments.append(encoded_days.get(day))
                i = end
            else:
                loose.append(bars[i])
                i += 1
        if loose:
            segments.append(orjson.dumps(as_dicts(loose))[1:-1])
        return b",".join(s for s in segments if s)


class EncodedDays:
    """`as_dicts` of whole stored days, JSON-encoded once and kept while the store keeps the day
    (it is the same list object then): a 10,080-bar answer encodes today's bars, not all of
    them. Keyed by the list's identity; the entry holds the list, so the id cannot be reused."""

    def __init__(self, entries: int = 64):
        self._entries: OrderedDict[int, tuple[list, bytes]] = OrderedDict()
        self._max = entries
        self._lock = threading.Lock()

    def get(self, day: list[tuple]) -> bytes:
        with self._lock:
            hit = self._entries.get(id(day))
            if hit is not None and hit[0] is day:
                self._entries.move_to_end(id(day))
                return hit[1]
        encoded = orjson.dumps(as_dicts(day))[1:-1]
        with self._lock:
            self._entries[id(day)] = (day, encoded)
            self._entries.move_to_end(id(day))
            while len(self._entries) > self._max:
                self._entries.popitem(last=False)
        return encoded


class MarketData:
    def __init__(
        self,
        store: CandleStore,
        state: StateStore,
        *,
        max_limit: int = 50_000,
        ws_url: str = "",
        clock: Callable[[], float] = time.time,
    ):
        self.store = store
        self.state = state
        self.max_limit = max_limit
        self.ws_url = ws_url
        self.clock = clock
        self.encoded_days = EncodedDays()

    def _validate_count(self, name: str, value: int | None) -> int | None:
        if value is not None and not 1 <= value <= self.max_limit:
            raise BadRequest(
                f"{name} must be between 1 and {self.max_limit} (got {value})", code=f"invalid_{name}"
            )
        return value

    def candles(
        self,
        caller: Caller,
        symbol: str | None,
        timeframe: int | None = None,
        limit: int | None = None,
        start: int | None = None,
        end: int | None = None,
        page_size: int | None = None,
    ) -> dict:
        """The candles answer as JSON-ready data (REST, WebSocket history)."""
        return self.candles_answer(caller, symbol, timeframe, limit, start, end, page_size).as_dict()

    def candles_answer(
        self,
        caller: Caller,
        symbol: str | None,
        timeframe: int | None = None,
        limit: int | None = None,
        start: int | None = None,
        end: int | None = None,
        page_size: int | None = None,
    ) -> CandlesAnswer:
        """Bars of [start, end) resampled to `timeframe`, selected by time, then:

        - `limit=N`: the last N bars of the range (the original contract); when that leaves
          older bars out, `next` asks for them (the same N, ending where this answer starts);
        - `page_size=N`: the first N bars of the range, oldest first; `next` asks for the
          following page. With `limit` too, `limit` first narrows the range to its last bars.

        Following `next` until `has_more` is false returns every bar of the range exactly once.
        """
        symbol = validate_symbol(symbol)
        timeframe = validate_timeframe(timeframe)
        limit = self._validate_count("limit", limit)
        page_size = self._validate_count("page_size", page_size)
        start = validate_unix_seconds("start", start)
        end = validate_unix_seconds("end", end)
        caller.require_symbol(symbol)
        now = self.clock()
        if start is not None and end is not None and start >= end:
            stored = self.store.read_range(symbol, 0, 0, with_bounds=True)
            if stored.bars is None:
                raise self._no_data(symbol)
            return CandlesAnswer(symbol, timeframe, [], now, None, stored, None)
        # A range selects bars by their (bucket) time, and every selected bar is whole:
        # read up to the end of the last bucket that starts before `end`.
        read_end = None if end is None else bucket_start(end - 1, timeframe) + timeframe
        stored = self.store.read_range(symbol, start, read_end, with_bounds=True)
        forming = None
        if read_end is None or read_end > now - FORMING_MAX_AGE:  # else no forming bar can be in range
            forming = self._forming(symbol, stored.bars, start, read_end)
        # The forming minute joins the stored ones, so the current bucket's bar is resampled by the
        # same rule as the live stream's (`resample.bucket_bar`).
        bars = stored.bars if forming is None else [*(stored.bars or []), forming]
        if bars is None:
            raise self._no_data(symbol)
        out = resample_bars(bars, timeframe)
        if start is not None or end is not None:
            lo = start if start is not None else 0
            hi = end if end is not None else 1 << 62
            out = [b for b in out if lo <= b[0] < hi]
        page, next_query = out, None
        if limit is not None and len(out) > limit:
            page = out[-limit:]
            if page_size is None:  # the older remainder: same limit, ending where this page starts
                next_query = {"limit": limit, "start": start, "end": page[0][0]}
        if page_size is not None and len(page) > page_size:
            page = page[:page_size]
            next_query = {"page_size": page_size, "start": page[-1][0] + timeframe, "end": end}
        next_url = None
        if next_query is not None:
            query = {"symbol": symbol, "timeframe": timeframe}
            query.update({k: v for k, v in next_query.items() if v is not None})
            next_url = "/api/candles?" + urlencode(query)
        return CandlesAnswer(symbol, timeframe, page, now, next_url, stored, forming)

    @staticmethod
    def _no_data(symbol: str) -> NotFound:
        return NotFound(
            f"no stored data for {symbol} (run the archive, or wait for live history)", code="no_data"
        )

    def _forming(self, symbol: str, bars: list | None, start: int | None, end: int | None) -> tuple | None:
        """The collector's forming bar (DynamoDB) when it belongs after `bars`: newer than the last
        stored minute (a stored, closed bar of the same minute wins) and inside the range. The
        record is only there while its writer is alive and linked (it renews it; a dropped link
        or a stop deletes it). A state-store hiccup only costs the forming bar, never the answer."""
        if self.state is None:
            return None
        try:
            forming = self.state.forming_bar(symbol, self.clock())
        except Unavailable:
            return None
        if forming is None:
            return None
        t = int(forming[0])
        if (start is not None and t < start) or (end is not None and t >= end):
            return None
        if bars and bars[-1][0] >= t:
            return None
        return tuple(forming)

    def timing(self, caller: Caller, symbol: str | None, timeframe: int | None) -> dict:
        symbol = validate_symbol(symbol)
        timeframe = validate_timeframe(timeframe)
        caller.require_symbol(symbol)
        return bar_timing(symbol, timeframe, self.clock())

    def catalog(self) -> list[SymbolInfo]:
        """The stored catalog, plus any symbol that has data but no catalog entry."""
        infos = self.store.read_catalog() or list(DEFAULT_SYMBOLS)
        known = {i.symbol for i in infos}
        extra = [SymbolInfo(s, s, "other", 5) for s in self.store.symbols_with_data() if s not in known]
        return infos + extra

    def symbols(self, caller: Caller) -> dict:
        infos = [i for i in self.catalog() if caller.may_read(i.symbol)]
        return {
            "count": len(infos),
            "symbols": [i.public() for i in infos],
            "categories": categories(infos),
            "all_symbols": caller.all_symbols,
        }

    def live_status(self, caller: Caller, session_token: str | None = None) -> dict:
        """The collectors' status records merged, as a partner may see them: flags, codes
        (never upstream text) and only the symbols the key may read. A record its collector
        stopped renewing (stopped, killed) reads as not live."""
        now = self.clock()
        records = sorted(self.state.collector_statuses(), key=lambda r: float(r.get("updated_at", 0)))
        fresh = [r for r in records if float(r.get("valid_until", 0)) >= now and not r.get("stopped")]
        newest = records[-1] if records else None
        symbols: dict[str, dict] = {}
        for record in fresh:  # a symbol's freshest report wins (a lease may just have moved)
            for symbol, info in (record.get("symbols") or {}).items():
                if caller.may_read(symbol):
                    symbols[symbol] = {
                        "state": info.get("state"),
                        "last_tick_age": info.get("last_tick_age"),
                        "error": info.get("error"),
                    }
        errors = [r.get("error") for r in (fresh or records[-1:]) if r.get("error")]
        ws_url = self.ws_url
        if ws_url and caller.raw_key:
            ws_url += ("&" if "?" in ws_url else "?") + "api_key=" + caller.raw_key
        elif ws_url and session_token:
            # A browser signed in by cookie has no raw key to give: it gets a signed session
            # token instead (the cookie's format), because the WebSocket host may not see the cookie.
            ws_url += ("&" if "?" in ws_url else "?") + "session=" + session_token
        connected = any(r.get("connected") for r in fresh)
        return {
            "live": connected,
            "ws_url": ws_url or None,
            "upstream": {
                "connected": connected,
                "authenticated": any(r.get("authenticated") for r in fresh),
                "source": newest.get("source") if newest else None,
                "last_error": errors[-1] if errors else None,
                "status_age_seconds": None if newest is None else round(now - float(newest["updated_at"]), 1),
                "collectors": len(fresh),
                "symbols": dict(sorted(symbols.items())),
            },
            "server_time": round(now, 3),
        }
