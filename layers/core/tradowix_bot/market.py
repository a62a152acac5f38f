"""What partners ask for: candles, symbols, timing, live status. Storage-agnostic domain logic."""

from __future__ import annotations

import time
from collections.abc import Callable

from .candles import as_dicts, validate_symbol
from .errors import BadRequest, NotFound, Unavailable
from .keys import KeyRecord, require_symbol
from .resample import BASE_TIMEFRAME, validate_timeframe
from .resample import resample as resample_bars
from .state import StateStore
from .store import CandleStore
from .symbols import DEFAULT_SYMBOLS, SymbolInfo, categories
from .timing import bar_timing


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

    def _validate_limit(self, limit: int | None) -> int | None:
        if limit is not None and not 1 <= limit <= self.max_limit:
            raise BadRequest(
                f"limit must be between 1 and {self.max_limit} (got {limit})", code="invalid_limit"
            )
        return limit

    def candles(
        self,
        key: KeyRecord | None,
        symbol: str | None,
        timeframe: int | None = None,
        limit: int | None = None,
        start: int | None = None,
        end: int | None = None,
    ) -> dict:
        symbol = validate_symbol(symbol)
        timeframe = validate_timeframe(timeframe)
        limit = self._validate_limit(limit)
        if start is not None and end is not None and start >= end:
            raise BadRequest(
                "start must be before end (start inclusive, end exclusive)", code="invalid_range"
            )
        require_symbol(key, symbol)
        # A range selects bars by their (bucket) time, and every selected bar is whole:
        # read up to the end of the last bucket that starts before `end`.
        read_end = None if end is None else (end - 1) - (end - 1) % timeframe + timeframe
        bars = self.store.read(symbol, start, read_end)
        bars, forming = self._with_forming(symbol, bars, start, read_end)
        if bars is None:
            raise NotFound(
                f"no stored data for {symbol} (run the archive, or wait for live history)", code="no_data"
            )
        out = resample_bars(bars, timeframe)
        if start is not None or end is not None:
            lo = start if start is not None else 0
            hi = end if end is not None else 1 << 62
            out = [b for b in out if lo <= b[0] < hi]
        if limit is not None:
            out = out[-limit:]
        now = self.clock()
        # The newest bar is closed once its bucket is over and no forming minute is part of it:
        # a forming bar is never reported closed, even after its minute (its writer decides).
        last_closed = not out or (
            out[-1][0] + timeframe <= now and not (forming is not None and forming[0] >= out[-1][0])
        )
        return {
            "symbol": symbol,
            "timeframe": timeframe,
            "base_timeframe": BASE_TIMEFRAME,
            "count": len(out),
            "candles": as_dicts(out),
            "last_closed": last_closed,
            "timing": bar_timing(symbol, timeframe, now),
        }

    def _with_forming(self, symbol: str, bars: list | None, start: int | None, end: int | None):
        """Append the collector's forming bar (DynamoDB) when it is newer than the last stored
        minute; a stored (closed) bar of the same minute wins. The record is only there while
        its writer is alive and linked (it renews it; a dropped link or a stop deletes it).
        Returns (bars, the forming bar appended or None). A state-store hiccup only costs the
        forming bar, never the answer."""
        if self.state is None:
            return bars, None
        try:
            forming = self.state.forming_bar(symbol, self.clock())
        except Unavailable:
            return bars, None
        if forming is None:
            return bars, None
        t = int(forming[0])
        if (start is not None and t < start) or (end is not None and t >= end):
            return bars, None
        if bars and bars[-1][0] >= t:
            return bars, None
        return [*(bars or []), tuple(forming)], forming

    def timing(self, key: KeyRecord | None, symbol: str | None, timeframe: int | None) -> dict:
        symbol = validate_symbol(symbol)
        timeframe = validate_timeframe(timeframe)
        require_symbol(key, symbol)
        return bar_timing(symbol, timeframe, self.clock())

    def catalog(self) -> list[SymbolInfo]:
        """The stored catalog, plus any symbol that has data but no catalog entry."""
        infos = self.store.read_catalog() or list(DEFAULT_SYMBOLS)
        known = {i.symbol for i in infos}
        extra = [SymbolInfo(s, s, "other", 5) for s in self.store.symbols_with_data() if s not in known]
        return infos + extra

    def symbols(self, key: KeyRecord | None) -> dict:
        infos = [i for i in self.catalog() if key is None or key.may_read(i.symbol)]
        return {
            "count": len(infos),
            "symbols": [i.public() for i in infos],
            "categories": categories(infos),
            "all_symbols": key is None or key.all_symbols,
        }

    def live_status(
        self, key: KeyRecord | None, raw_key: str | None, session_token: str | None = None
    ) -> dict:
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
                if key is None or key.may_read(symbol):
                    symbols[symbol] = {
                        "state": info.get("state"),
                        "last_tick_age": info.get("last_tick_age"),
                        "error": info.get("error"),
                    }
        errors = [r.get("error") for r in (fresh or records[-1:]) if r.get("error")]
        ws_url = self.ws_url
        if ws_url and raw_key:
            ws_url += ("&" if "?" in ws_url else "?") + "api_key=" + raw_key
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
