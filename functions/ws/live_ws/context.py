"""Per-container singletons, built lazily on first use (nothing touches AWS at import)."""

from __future__ import annotations

import functools

from tradowix_bot.config import Settings
from tradowix_bot.keys import KeyRegistry
from tradowix_bot.live_connections import ConnectionStore
from tradowix_bot.live_poster import ConnectionPoster
from tradowix_bot.live_socket import LiveSocket
from tradowix_bot.market import MarketData
from tradowix_bot.ratelimit import RateLimiter
from tradowix_bot.sessions import SessionSigner
from tradowix_bot.state import StateStore
from tradowix_bot.store import CandleStore


@functools.cache
def settings() -> Settings:
    return Settings.from_env()


@functools.cache
def live() -> LiveSocket:
    s = settings()
    state = StateStore(s.state_table)
    market = MarketData(
        CandleStore(s.candles_bucket, cache_entries=s.day_cache_entries),
        state,
        max_limit=s.max_limit,
    )
    return LiveSocket(
        KeyRegistry(s.keys_table, cache_seconds=s.key_cache_seconds),
        ConnectionStore(s.connections_table),
        market,
        ConnectionPoster(s.ws_management_endpoint),
        sessions=lambda: SessionSigner(state.cookie_secret(), s.cookie_max_age),
        rate_limiter=RateLimiter(s.state_table, default_per_minute=s.rate_limit_per_minute),
    )


def reset() -> None:
    for f in (settings, live):
        f.cache_clear()
