"""The 1m bars of the current buckets, per symbol, and the resampled bar of a bucket.

The publisher gets 1m bars from the collector as they form and close; a subscriber of 5m needs
the 5m bar as it stands, so the minutes of the bucket are kept here. A publisher started
mid-bucket reads the bucket's earlier minutes from the candle store once (`backfill`). The
resampling itself is the domain's (`resample`, `as_dicts`): one current-bucket function for
REST and live (`resample.bucket_bar`).

Not thread-safe: used by the publisher's delivery thread only.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..candles import as_dicts
from ..errors import DomainError
from ..resample import bucket_bar, bucket_start
from .logs import get_logger

KEEP_SECONDS = 3600  # at least the last hour of minutes stays, whatever the timeframes

logger = get_logger("tradowix-live")


@dataclass
class _Minutes:
    bars: dict[int, tuple] = field(default_factory=dict)
    covered_from: int | None = None  # earliest minute known to be complete in `bars`


class BarBook:
    def __init__(self, store=None):
        self.store = store  # CandleStore, for the backfill; None: no backfill
        self._symbols: dict[str, _Minutes] = {}

    def add(self, symbol: str, bar: tuple) -> None:
        minutes = self._symbols.setdefault(symbol, _Minutes())
        minutes.bars[int(bar[0])] = tuple(bar)
        if minutes.covered_from is None:
            minutes.covered_from = int(bar[0])

    def bucket_bar(self, symbol: str, timeframe: int, bucket: int) -> dict | None:
        """The bar of `bucket` (its start) at `timeframe`, from the minutes known; None if none."""
        minutes = self._symbols.get(symbol)
        if minutes is None:
            return None
        if minutes.covered_from is not None and bucket < minutes.covered_from:
            self._backfill(symbol, minutes, bucket)
        bar = bucket_bar(minutes.bars.values(), timeframe, bucket)
        return None if bar is None else as_dicts([bar])[0]

    def _backfill(self, symbol: str, minutes: _Minutes, bucket: int) -> None:
        """Started mid-bucket: the bucket's earlier minutes come from the store (once)."""
        if self.store is None:
            return
        try:
            for b in self.store.read(symbol, bucket, minutes.covered_from) or []:
                minutes.bars.setdefault(int(b[0]), tuple(b))
            minutes.covered_from = bucket
        except DomainError as exc:
            logger.warning("backfill failed", extra={"symbol": symbol, "reason": exc.message})

    def prune(self, symbol: str, timeframes) -> None:
        """Keep only the minutes of the buckets still in use (at least the last hour)."""
        minutes = self._symbols.get(symbol)
        if minutes is None or not minutes.bars:
            return
        newest = max(minutes.bars)
        oldest_needed = newest - KEEP_SECONDS
        for timeframe in timeframes:
            oldest_needed = min(oldest_needed, bucket_start(newest, timeframe))
        for t in [t for t in minutes.bars if t < oldest_needed]:
            del minutes.bars[t]
        if minutes.covered_from is not None and minutes.covered_from < oldest_needed:
            minutes.covered_from = oldest_needed

    def minutes_held(self) -> int:
        return sum(len(m.bars) for m in self._symbols.values())
