"""Turns live messages of the partner protocol into strategy signals, one per closed bar.

Used by `tradowix live` and usable by any bot: feed it every message the client delivers
(`history`, `bar`, ...) and it answers the signals of bars that just closed. A bar counts as
closed when its update says `"closed": true`, or, for servers without that flag, when a
newer bar of the same subscription arrives.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..candles import Bar
from . import builtin as strategy

HISTORY_BARS = 500  # enough for stable indicators (see strategy.latest_signal)


@dataclass(frozen=True)
class ClosedBar:
    symbol: str
    bar: Bar
    signal: strategy.Signal | None  # None while there are fewer than strategy.WARMUP bars
    bars_known: int


def _bar(c: dict) -> Bar:
    return Bar(int(c["time"]), float(c["open"]), float(c["high"]), float(c["low"]), float(c["close"]))


class LiveSignals:
    def __init__(self, timeframe: int = 60):
        self.timeframe = timeframe
        self.series: dict[str, dict[int, Bar]] = {}
        self.signalled: dict[str, int] = {}  # symbol -> time of the last bar already signalled

    def load(self, symbol: str, candles: list[dict], *, last_closed: bool = True) -> None:
        """Seed a symbol from /api/candles (the forming last bar, if any, is kept but not signalled)."""
        bars = self.series.setdefault(symbol, {})
        for c in candles:
            bars[int(c["time"])] = _bar(c)
        self._trim(symbol)
        if candles:
            last = int(candles[-1]["time"])
            self.signalled[symbol] = max(self.signalled.get(symbol, 0), last if last_closed else last - 1)

    def _trim(self, symbol: str) -> None:
        bars = self.series[symbol]
        if len(bars) > HISTORY_BARS * 2:
            for t in sorted(bars)[: len(bars) - HISTORY_BARS]:
                del bars[t]

    def on_message(self, msg: dict) -> list[ClosedBar]:
        kind = msg.get("type")
        symbol = msg.get("symbol")
        if not isinstance(symbol, str) or msg.get("timeframe", self.timeframe) != self.timeframe:
            return []
        if kind == "history" and isinstance(msg.get("candles"), list):
            bars = self.series.setdefault(symbol, {})
            for c in msg["candles"]:
                bars[int(c["time"])] = _bar(c)
            self._trim(symbol)
            # A reconnect's history fills gaps; it does not signal bars that closed meanwhile.
            if msg["candles"]:
                newest = int(msg["candles"][-1]["time"])
                self.signalled[symbol] = max(self.signalled.get(symbol, 0), newest - 1)
            return []
        if kind != "bar" or not isinstance(msg.get("candle"), dict):
            return []
        bar = _bar(msg["candle"])
        bars = self.series.setdefault(symbol, {})
        newest_before = max(bars) if bars else None
        bars[bar.time] = bar
        self._trim(symbol)
        closed_times = []
        if msg.get("closed") is True:
            closed_times.append(bar.time)
        elif "closed" not in msg and newest_before is not None and bar.time > newest_before:
            closed_times.append(newest_before)  # an original server: a newer bar closes the last
        out = []
        for t in closed_times:
            if t <= self.signalled.get(symbol, -1):
                continue
            self.signalled[symbol] = t
            history = [bars[k] for k in sorted(bars) if k <= t][-HISTORY_BARS:]
            signal = strategy.latest_signal(history) if len(history) >= strategy.WARMUP else None
            out.append(ClosedBar(symbol, bars[t], signal, len(history)))
        return out
