"""Per-container singletons, built lazily on first use: nothing touches AWS at import, and a
warm container reuses clients, caches and the key snapshot across invocations."""

from __future__ import annotations

import functools

from tradowix_bot.config import Settings
from tradowix_bot.keys import KeyRegistry
from tradowix_bot.market import MarketData
from tradowix_bot.sessions import SessionSigner
from tradowix_bot.state import StateStore
from tradowix_bot.store import CandleStore


@functools.cache
def settings() -> Settings:
    return Settings.from_env()


@functools.cache
def keys() -> KeyRegistry:
    return KeyRegistry(settings().keys_table, cache_seconds=settings().key_cache_seconds)


@functools.cache
def state() -> StateStore:
    return StateStore(settings().state_table)


@functools.cache
def market() -> MarketData:
    s = settings()
    store = CandleStore(s.candles_bucket, cache_entries=s.day_cache_entries)
    return MarketData(store, state(), max_limit=s.max_limit, ws_url=s.ws_url)


def signer() -> SessionSigner:
    # Not cached here: StateStore caches the secret, and a failed first read must be retried.
    return SessionSigner(state().cookie_secret(), settings().cookie_max_age)


def reset() -> None:
    for f in (settings, keys, state, market):
        f.cache_clear()
