"""Per-container singletons, built lazily on first use (nothing touches AWS at import)."""

from __future__ import annotations

import functools

from tradowix_bot.server.config import Settings
from tradowix_bot.server.keys import KeyRegistry
from tradowix_bot.server.live_connections import ConnectionStore
from tradowix_bot.server.live_poster import ConnectionPoster
from tradowix_bot.server.live_socket import LiveSocket
from tradowix_bot.server.market import MarketData
from tradowix_bot.server.metrics import CountedPoster, recorder
from tradowix_bot.server.ratelimit import RateLimiter
from tradowix_bot.server.sessions import SessionSigner
from tradowix_bot.server.state import StateStore
from tradowix_bot.server.store import CandleStore


@functools.cache
def settings() -> Settings:
    return Settings.from_env(require=("CONNECTIONS_TABLE", "WS_MANAGEMENT_ENDPOINT"))


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
        CountedPoster(ConnectionPoster(s.ws_management_endpoint), recorder("ws")),
        # Read only: the partner API creates the secret at the first gate sign-in.
        sessions=lambda: SessionSigner(state.cookie_secret(create=False), s.cookie_max_age),
        rate_limiter=RateLimiter(s.state_table, default_per_minute=s.rate_limit_per_minute),
    )


def reset() -> None:
    for f in (settings, live):
        f.cache_clear()
