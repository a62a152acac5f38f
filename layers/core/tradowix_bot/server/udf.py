"""TradingView's UDF datafeed protocol (the HTTP protocol of TradingView's `UDFCompatibleDatafeed`
adapter, which the Charting Library and many open-source front ends consume), answered from
the same market code as /api/candles: `history` is a `MarketData.candles_answer`, resampled
by the same resampler, so a UDF bar and a REST bar of the same bucket are the same bar.

    /udf/config    what the datafeed supports (resolutions, search, server time)
    /udf/symbols   one symbol's LibrarySymbolInfo
    /udf/search    symbol search
    /udf/history   bars of [from, to) in columns t/o/h/l/c(/v); `countback` (if given) wins
                   over `from`: the last N bars before `to`; no bars: `no_data` with
                   `nextTime` (the newest bar before the range) when older data exists
    /udf/time      server time, unix seconds, as plain text

Bar times are the bar's open in unix seconds (daily bars at 00:00 UTC), as UDF wants.
"""

from __future__ import annotations

from ..candles import validate_symbol
from ..errors import BadRequest, NotFound
from ..symbols import SymbolInfo
from .authn import Caller
from .market import MarketData, validate_unix_seconds

EXCHANGE = "Tradowix"
DAY = 86400
# Minutes as TradingView writes them, then daily. Weekly and monthly bars are built by the
# library from daily ones (has_weekly_and_monthly: false): our buckets are epoch-aligned.
INTRADAY = ("1", "2", "3", "5", "10", "15", "30", "60", "120", "240")
SUPPORTED_RESOLUTIONS = (*INTRADAY, "1D")
ACCEPTED_RESOLUTIONS = (*SUPPORTED_RESOLUTIONS, "D")
SEARCH_LIMIT = 30


def resolution_seconds(resolution: str | None) -> int:
    if resolution is None:
        raise BadRequest(
            "resolution is required, e.g. resolution=5 (minutes) or 1D", code="missing_resolution"
        )
    if resolution in ("D", "1D"):
        return DAY
    if resolution in INTRADAY:
        return int(resolution) * 60
    raise BadRequest(
        f"unsupported resolution {str(resolution)[:20]!r}: use one of {', '.join(ACCEPTED_RESOLUTIONS)}",
        code="invalid_resolution",
    )


def ticker_of(symbol: str | None) -> str:
    """`BTCUSD-OTC` or `Tradowix:BTCUSD-OTC` (the full name search results carry)."""
    if symbol and symbol.startswith(EXCHANGE + ":"):
        symbol = symbol[len(EXCHANGE) + 1 :]
    return validate_symbol(symbol)


def config(infos: list[SymbolInfo]) -> dict:
    types = sorted({i.category for i in infos})
    return {
        "supported_resolutions": list(SUPPORTED_RESOLUTIONS),
        "supports_search": True,
        "supports_group_request": False,
        "supports_marks": False,
        "supports_timescale_marks": False,
        "supports_time": True,
        "exchanges": [{"value": EXCHANGE, "name": EXCHANGE, "desc": "Tradowix markets"}],
        "symbols_types": [{"name": "All types", "value": ""}] + [{"name": t, "value": t} for t in types],
    }


def symbol_info(info: SymbolInfo) -> dict:
    """LibrarySymbolInfo, with the field names the UDF adapter passes through."""
    return {
        "name": info.symbol,
        "ticker": info.symbol,
        "full_name": f"{EXCHANGE}:{info.symbol}",
        "description": info.name,
        "type": info.category,
        "session": "24x7",
        "exchange": EXCHANGE,
        "listed_exchange": EXCHANGE,
        "timezone": "Etc/UTC",
        "format": "price",
        "pricescale": 10**info.precision,
        "minmov": 1,
        "has_intraday": True,
        "intraday_multipliers": list(INTRADAY),
        "has_daily": True,
        "daily_multipliers": ["1"],
        "has_weekly_and_monthly": False,
        "supported_resolutions": list(SUPPORTED_RESOLUTIONS),
        "volume_precision": 0,
        "visible_plots_set": "ohlcv",
        "data_status": "streaming",
    }


class Datafeed:
    def __init__(self, market: MarketData):
        self.market = market

    def _readable(self, caller: Caller) -> list[SymbolInfo]:
        return [i for i in self.market.catalog() if caller.may_read(i.symbol)]

    def config(self, caller: Caller) -> dict:
        return config(self._readable(caller))

    def symbol(self, caller: Caller, symbol: str | None) -> dict:
        ticker = ticker_of(symbol)
        caller.require_symbol(ticker)
        info = next((i for i in self.market.catalog() if i.symbol == ticker), None)
        if info is None:
            raise NotFound(f"unknown symbol {ticker}", code="unknown_symbol")
        return symbol_info(info)

    def search(self, caller: Caller, query: str, kind: str, exchange: str, limit: int | None) -> list[dict]:
        wanted = query.strip().upper()
        found = [
            i
            for i in self._readable(caller)
            if (wanted in i.symbol.upper() or wanted in i.name.upper())
            and (not kind or kind == i.category)
            and (not exchange or exchange == EXCHANGE)
        ]
        return [
            {
                "symbol": i.symbol,
                "full_name": f"{EXCHANGE}:{i.symbol}",
                "description": i.name,
                "exchange": EXCHANGE,
                "ticker": i.symbol,
                "type": i.category,
            }
            for i in found[: limit or SEARCH_LIMIT]
        ]

    def history(
        self,
        caller: Caller,
        symbol: str | None,
        resolution: str | None,
        start: int | None,
        end: int | None,
        countback: int | None = None,
    ) -> dict:
        ticker = ticker_of(symbol)
        timeframe = resolution_seconds(resolution)
        if start is None or end is None:
            raise BadRequest("history needs from and to (unix seconds)", code="missing_range")
        validate_unix_seconds("from", start)
        validate_unix_seconds("to", end)
        if countback is not None and not 1 <= countback <= self.market.max_limit:
            raise BadRequest(
                f"countback must be between 1 and {self.market.max_limit} (got {countback})",
                code="invalid_countback",
            )
        if countback is not None:  # UDF: countback wins over from (the last N bars before `to`)
            answer = self.market.candles_answer(caller, ticker, timeframe, limit=countback, end=end)
        else:
            answer = self.market.candles_answer(caller, ticker, timeframe, start=start, end=end)
        bars = answer.bars
        if not bars:
            before = start if countback is None else end
            older = self.market.candles_answer(caller, ticker, timeframe, limit=1, end=min(before, end)).bars
            return {"s": "no_data", "nextTime": older[-1][0]} if older else {"s": "no_data"}
        out = {
            "s": "ok",
            "t": [b[0] for b in bars],
            "o": [b[1] for b in bars],
            "h": [b[2] for b in bars],
            "l": [b[3] for b in bars],
            "c": [b[4] for b in bars],
        }
        if all(len(b) > 5 and b[5] is not None for b in bars):  # a column is all or nothing
            out["v"] = [b[5] for b in bars]
        return out
