"""A deterministic OTC-like price generator.

Every tick is a pure function of (symbol, time), so the seeded history and the live
ticks agree and two runs produce identical data. The log-price is a mean-reverting walk
anchored at whole hours; minutes are a Brownian bridge between hour anchors and ticks
(about one a second, with jitter) a bridge between minute anchors.
"""

from __future__ import annotations

import functools
import math
import random
import threading
import zlib

from ..candles import Bar
from ..symbols import DEFAULT_SYMBOLS, SymbolInfo

ORIGIN = 1_704_067_200  # 2024-01-01T00:00:00Z: hour anchors are walked from here
HOUR = 3600
_MEAN_REVERSION = 0.02


def _seed(*parts) -> int:
    return zlib.crc32(":".join(str(p) for p in parts).encode())


class _HourWalk:
    """A symbol's hour anchors: a mean-reverting walk of log-deviations from hour 0 on."""

    def __init__(self, symbol: str, sigma: float):
        self.rng = random.Random(_seed(symbol, "hours"))
        self.sigma = sigma
        self.anchors = [0.0]

    def at(self, hour: int) -> float:
        anchors, x = self.anchors, self.anchors[-1]
        while len(anchors) <= hour:
            x = x * (1 - _MEAN_REVERSION) + self.rng.gauss(0.0, self.sigma)
            anchors.append(x)
        return anchors[hour]


class SyntheticMarket:
    def __init__(self, symbols: tuple[SymbolInfo, ...] | list[SymbolInfo] = DEFAULT_SYMBOLS):
        self.symbols = {s.symbol: s for s in symbols}
        self._anchors: dict[str, _HourWalk] = {}
        self._lock = threading.Lock()

    def info(self, symbol: str) -> SymbolInfo:
        return self.symbols[symbol]

    def _hour_anchor(self, symbol: str, hour: int) -> float:
        """Log-deviation from the symbol's level at the start of hour index `hour`."""
        with self._lock:  # the collector generates history in a thread while ticks stream
            return self._hour_anchor_locked(symbol, hour)

    def _hour_anchor_locked(self, symbol: str, hour: int) -> float:
        walk = self._anchors.get(symbol)
        if walk is None:
            # One generator per symbol, drawn in hour order from the origin: the walk is the
            # same whichever hour is asked first. (A generator per hour cost 0.16 s per symbol
            # and process, growing every year: seeding a Mersenne Twister is the expensive part.)
            walk = self._anchors[symbol] = _HourWalk(symbol, self.symbols[symbol].volatility * math.sqrt(60))
        return walk.at(hour)

    @functools.lru_cache(maxsize=4096)  # noqa: B019 - one market per process, bounded
    def _minute_anchors(self, symbol: str, hour: int) -> tuple[float, ...]:
        """61 log-deviations: at each minute boundary of the hour, bridging its anchors."""
        a, b = self._hour_anchor(symbol, hour), self._hour_anchor(symbol, hour + 1)
        rng = random.Random(_seed(symbol, "minutes", hour))
        sigma = self.symbols[symbol].volatility
        walk = [0.0]
        for _ in range(60):
            walk.append(walk[-1] + rng.gauss(0.0, sigma))
        drift = walk[60] - (b - a)
        return tuple(a + walk[k] - drift * k / 60 for k in range(61))

    def _minute_walk(self, symbol: str, minute_start: int) -> tuple[list[float], list[float]]:
        """The minute's ticks as (seconds into the minute, log-deviation) pairs, unrounded."""
        t_rel = minute_start - ORIGIN
        hour, minute = divmod(t_rel // 60, 60)
        anchors = self._minute_anchors(symbol, hour)
        a, b = anchors[minute], anchors[minute + 1]
        rng = random.Random(_seed(symbol, "ticks", minute_start))
        sigma = self.symbols[symbol].volatility / math.sqrt(60)
        times, t = [], 0.0
        while True:
            t += rng.uniform(0.6, 1.4)  # "about every second"
            if t >= 60:
                break
            times.append(t)
        walk = [0.0]
        for _ in times:
            walk.append(walk[-1] + rng.gauss(0.0, sigma))
        n = len(times)
        drift = walk[n] - (b - a)
        return times, [a + walk[k] - drift * k / n for k in range(1, n + 1)]

    def _price(self, symbol: str, x: float) -> float:
        info = self.symbols[symbol]
        return round(info.level * math.exp(x), info.precision)

    def minute_ticks(self, symbol: str, minute_start: int) -> list[tuple[float, float]]:
        """Ticks `(unix_seconds, price)` of the minute starting at `minute_start`."""
        times, xs = self._minute_walk(symbol, minute_start)
        return [
            (minute_start + round(off, 3), self._price(symbol, x)) for off, x in zip(times, xs, strict=True)
        ]

    def bar(self, symbol: str, minute_start: int, until: float | None = None) -> Bar | None:
        """The 1m bar of that minute, built from its ticks (only those before `until`)."""
        if until is not None:
            ticks = [tk for tk in self.minute_ticks(symbol, minute_start) if tk[0] < until]
            if not ticks:
                return None
            prices = [p for _, p in ticks]
            return Bar(minute_start, prices[0], max(prices), min(prices), prices[-1])
        _, xs = self._minute_walk(symbol, minute_start)
        if not xs:
            return None
        # A whole minute (the history's case, a week per symbol at start): the price is a
        # monotonic function of x, so pricing only open, high, low and close gives the bar
        # the ticks give, at a fraction of the cost.
        price = functools.partial(self._price, symbol)
        return Bar(minute_start, price(xs[0]), price(max(xs)), price(min(xs)), price(xs[-1]))

    def bars(self, symbol: str, start: int, end: int) -> list[Bar]:
        """Closed 1m bars with start <= time < end (minute-aligned)."""
        first = start - start % 60
        if first < start:
            first += 60
        out = []
        for m in range(first, end, 60):
            bar = self.bar(symbol, m)
            if bar is not None:
                out.append(bar)
        return out
