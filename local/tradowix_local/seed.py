"""Fill an empty local store with deterministic synthetic history, so curl answers at once."""

from __future__ import annotations

import time

from tradowix_bot.collector.synthetic_market import SyntheticMarket
from tradowix_bot.server.store import CandleStore
from tradowix_bot.symbols import DEFAULT_SYMBOLS

SEED_DAYS = 7


def seed_if_empty(store: CandleStore, days: int = SEED_DAYS, now: float | None = None) -> int:
    """Returns the number of bars written (0 when the store already has data)."""
    if store.symbols_with_data():
        return 0
    now = time.time() if now is None else now
    end = int(now) - int(now) % 60  # closed minutes only
    market = SyntheticMarket()
    store.write_catalog(DEFAULT_SYMBOLS)
    written = 0
    for info in DEFAULT_SYMBOLS:
        bars = market.bars(info.symbol, end - days * 86400, end)
        store.write(info.symbol, bars)
        written += len(bars)
    return written
