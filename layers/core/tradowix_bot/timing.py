"""Bar timing for countdowns: the same object in /api/timing, candle answers and WS messages."""

from __future__ import annotations

import time as _time


def bar_timing(symbol: str, timeframe: int, now: float | None = None) -> dict:
    now = _time.time() if now is None else now
    bar_open = int(now // timeframe) * timeframe
    elapsed = now - bar_open
    return {
        "symbol": symbol,
        "timeframe": timeframe,
        "server_time": round(now, 3),
        "bar_open": bar_open,
        "bar_close": bar_open + timeframe,
        "elapsed": round(elapsed, 3),
        "seconds_left": round(timeframe - elapsed, 3),
        "progress": round(elapsed / timeframe, 4),
    }
