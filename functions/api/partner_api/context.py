"""Per-container singletons: a warm container reuses clients, caches and the key snapshot
across invocations. `warm()` builds them during Lambda's init (see there); nothing calls AWS
at import."""

from __future__ import annotations

import functools

from tradowix_bot.server.admin import AdminSecretStore, AdminSessions, LoginThrottle, SessionTokenStore
from tradowix_bot.server.authn import Authenticator
from tradowix_bot.server.config import Settings
from tradowix_bot.server.keys import KeyRegistry
from tradowix_bot.server.market import MarketData
from tradowix_bot.server.ratelimit import RateLimiter
from tradowix_bot.server.sessions import SessionSigner
from tradowix_bot.server.state import StateStore
from tradowix_bot.server.store import CandleStore
from tradowix_bot.server.udf import Datafeed


@functools.cache
def settings() -> Settings:
    return Settings.from_env()


@functools.cache
def keys() -> KeyRegistry:
    return KeyRegistry(settings().keys_table, cache_seconds=settings().key_cache_seconds)


@functools.cache
def rate_limiter() -> RateLimiter:
    return RateLimiter(settings().state_table, default_per_minute=settings().rate_limit_per_minute)


@functools.cache
def state() -> StateStore:
    return StateStore(settings().state_table)


# How long the API trusts its listing of a symbol's day objects (today's is re-validated on
# every request with a conditional GET): a past day rewritten by gap repair shows within this.
DAY_INDEX_SECONDS = 60


@functools.cache
def market() -> MarketData:
    s = settings()
    store = CandleStore(s.candles_bucket, cache_entries=s.day_cache_entries, index_seconds=DAY_INDEX_SECONDS)
    return MarketData(store, state(), max_limit=s.max_limit, ws_url=s.ws_url)


@functools.cache
def datafeed() -> Datafeed:
    return Datafeed(market())


def authenticator() -> Authenticator:
    # Not cached: built from the (cached) parts on each request, so a replaced part is used.
    return Authenticator(keys(), sessions=signer, rate_limiter=rate_limiter())


def signer() -> SessionSigner:
    # Not cached here: StateStore caches the secret, and a failed first read must be retried.
    return SessionSigner(state().cookie_secret(), settings().cookie_max_age)


@functools.cache
def admin_secret() -> AdminSecretStore:
    return AdminSecretStore(settings().admin_secret_parameter)


def admin_sessions() -> AdminSessions:
    # Not cached: the secret's fingerprint (cached in AdminSecretStore) ends sessions when it changes.
    s = settings()
    return AdminSessions(
        state().cookie_secret(), admin_secret().fingerprint(), s.admin_session_max_age, state()
    )


@functools.cache
def login_throttle() -> LoginThrottle:
    return LoginThrottle(state())


@functools.cache
def session_token() -> SessionTokenStore:
    return SessionTokenStore(settings().session_token_parameter)


def reset() -> None:
    for f in (
        settings,
        keys,
        rate_limiter,
        state,
        market,
        datafeed,
        admin_secret,
        login_throttle,
        session_token,
    ):
        f.cache_clear()


def warm() -> None:
    """Create the boto3 clients and the singletons now, at import, as AWS recommends: Lambda
    runs init at full CPU and before the first request's clock starts; creating clients lazily
    made the first request after a cold start 2.5x the floor's (tests/bench/bench_coldstart.py).
    No AWS call happens here. The settings are validated first and a bad one stops init with a
    message naming it; anything else missing (no region configured, say) is left to first use."""
    from tradowix_bot.server import aws

    settings()
    try:
        aws.client("s3")
        aws.resource("dynamodb")
        keys(), state(), market()
    except Exception:  # noqa: BLE001 - init must never fail on this; first use retries
        pass
