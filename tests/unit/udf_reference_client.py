"""A UDF client written from TradingView's published protocol and its reference adapter
(`UDFCompatibleDatafeed`: udf-compatible-datafeed-base.ts, history-provider.ts,
data-pulse-provider.ts, requester.ts in the Charting Library's `datafeeds/udf`), not from our
server: each method does what the adapter does with an answer, with the same fallbacks and
the same failures, so a test that passes here is a chart that loads in TradingView.

The transport is injected (`send(path, query) -> (status, text)`); like the adapter's
Requester, the client ignores the HTTP status and parses the body as JSON.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from urllib.parse import quote

Send = Callable[[str, str], tuple[int, str]]

DEFAULT_CONFIGURATION = {  # the adapter's defaultConfiguration()
    "supports_search": False,
    "supports_group_request": True,
    "supported_resolutions": ["1", "5", "15", "30", "60", "1D", "1W", "1M"],
    "supports_marks": False,
    "supports_timescale_marks": False,
}


class DatafeedError(Exception):
    """What the adapter passes to onError / rejects with."""


def _to_string(value) -> str:  # JavaScript's toString() for what the adapter sends
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _parse_float(value) -> float:  # JavaScript parseFloat on a JSON value
    if isinstance(value, bool) or value is None:
        return math.nan
    return float(value)


def _parse_int(text: str) -> float:  # JavaScript parseInt: leading digits, else NaN
    text = text.strip()
    digits = ""
    for i, ch in enumerate(text):
        if ch.isdigit() or (i == 0 and ch in "+-"):
            digits += ch
        else:
            break
    try:
        return int(digits)
    except ValueError:
        return math.nan


class UdfReferenceClient:
    def __init__(self, send: Send):
        self._send_raw = send
        self.configuration = dict(DEFAULT_CONFIGURATION)

    # Requester.sendRequest: `key=value` joined by &, encodeURIComponent, then JSON.parse(text)
    def _send(self, path: str, params: dict | None = None):
        query = ""
        if params:
            query = "&".join(
                f"{quote(k, safe='')}={quote(_to_string(v), safe='')}" for k, v in params.items()
            )
        _status, text = self._send_raw(path, query)
        return json.loads(text)

    def on_ready(self) -> dict:
        try:
            configuration = self._send("config")
        except (ValueError, OSError):
            configuration = dict(DEFAULT_CONFIGURATION)
        # _setupWithConfiguration
        configuration.setdefault("exchanges", [])
        if not configuration.get("supports_search") and not configuration.get("supports_group_request"):
            raise DatafeedError(
                "Unsupported datafeed configuration. Must either support search, or support group request"
            )
        self.configuration = configuration
        return configuration

    def get_server_time(self) -> float | None:
        if not self.configuration.get("supports_time"):
            return None
        _status, text = self._send_raw("time", "")
        value = _parse_int(text)
        return None if isinstance(value, float) and math.isnan(value) else value

    def search_symbols(self, user_input: str, exchange: str, symbol_type: str) -> list[dict]:
        if not self.configuration.get("supports_search"):
            raise DatafeedError("this client follows the search path only when the datafeed supports it")
        params = {"limit": 30, "query": user_input.upper(), "type": symbol_type, "exchange": exchange}
        try:
            response = self._send("search", params)
        except ValueError:
            return []
        if isinstance(response, dict) and response.get("s") is not None:
            return []  # the adapter logs the errmsg and shows no results
        return response

    def resolve_symbol(self, symbol_name: str) -> dict:
        if self.configuration.get("supports_group_request"):
            raise DatafeedError("group requests are not what this datafeed declares")
        try:
            response = self._send("symbols", {"symbol": symbol_name})
        except ValueError:
            raise DatafeedError("unknown_symbol") from None
        if response.get("s") is not None:
            raise DatafeedError("unknown_symbol")
        symbol = response.get("name")
        listed = response.get("listed_exchange", response.get("exchange-listed"))
        traded = response.get("exchange", response.get("exchange-traded"))

        def first(*names, default=None):
            for name in names:
                if response.get(name) is not None:
                    return response[name]
            return default

        return {
            **response,
            "name": symbol,
            "base_name": [f"{listed}:{symbol}"],
            "full_name": first("full_name", default=f"{traded}:{symbol}"),
            "listed_exchange": listed,
            "exchange": traded,
            "has_intraday": first("has_intraday", "has-intraday", default=False),
            "minmov": first("minmovement", "minmov", default=0),
            "session": first("session", "session-regular"),
            "supported_resolutions": first(
                "supported_resolutions",
                "supported-resolutions",
                default=self.configuration.get("supported_resolutions") or [],
            ),
            "has_daily": first("has_daily", "has-daily", default=True),
            "intraday_multipliers": first(
                "intraday_multipliers", "intraday-multipliers", default=["1", "5", "15", "30", "60"]
            ),
            "volume_precision": first("volume_precision", "volume-precision"),
            "format": first("format", default="price"),
        }

    # HistoryProvider.getBars + _processHistoryResponse
    def get_bars(
        self, symbol_info: dict, resolution: str, start: int, end: int, countback: int | None = None
    ):
        params = {
            "symbol": symbol_info.get("ticker") or "",
            "resolution": resolution,
            "from": start,
            "to": end,
        }
        if countback is not None:
            params["countback"] = countback
        response = self._send("history", params)
        if response.get("s") not in ("ok", "no_data"):
            raise DatafeedError(response.get("errmsg"))
        meta = {"noData": False}
        bars = []
        if response["s"] == "no_data":
            meta["noData"] = True
            meta["nextTime"] = response.get("nextTime")
        else:
            volume_present = response.get("v") is not None
            ohl_present = response.get("o") is not None
            for i in range(len(response["t"])):
                bar = {"time": response["t"][i] * 1000}
                bar["close"] = bar["open"] = bar["high"] = bar["low"] = _parse_float(response["c"][i])
                if ohl_present:
                    bar["open"] = _parse_float(response["o"][i])
                    bar["high"] = _parse_float(response["h"][i])
                    bar["low"] = _parse_float(response["l"][i])
                if volume_present:
                    bar["volume"] = _parse_float(response["v"][i])
                bars.append(bar)
        return bars, meta

    # DataPulseProvider._updateDataForSubscriber: the request a live chart repeats every 10 s
    def pulse(self, symbol_info: dict, resolution: str, now: float | None = None):
        end = int(now if now is not None else time.time())
        if resolution in ("D", "1D"):
            days = 10
        elif resolution in ("W", "1W"):
            days = 70
        elif resolution in ("M", "1M"):
            days = 310
        else:
            days = 10 * int(resolution) / (24 * 60)
        bars, _meta = self.get_bars(symbol_info, resolution, int(end - days * 86400), end, countback=2)
        if len(bars) < 2:
            raise DatafeedError("Not enough bars in history for proper pulse update. Need at least 2.")
        return bars
