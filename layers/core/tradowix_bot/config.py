"""Settings read from the environment once. Names match template.yaml's function environment."""

from __future__ import annotations

import os
from dataclasses import dataclass


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    return int(raw) if raw not in (None, "") else default


@dataclass(frozen=True)
class Settings:
    candles_bucket: str
    keys_table: str
    state_table: str
    retention_days: int
    build_retention_days: int
    key_cache_seconds: int
    cookie_max_age: int
    max_limit: int
    day_cache_entries: int
    ws_url: str
    # live WebSocket (defaults keep older callers working)
    connections_table: str = ""
    ws_management_endpoint: str = ""
    live_throttle_seconds: float = 2.0
    admin_secret_parameter: str = "/tradowix/admin-secret"
    session_token_parameter: str = "/tradowix/session-token"
    admin_session_max_age: int = 8 * 3600
    rate_limit_per_minute: int = 600  # per key, unless its record says otherwise

    @classmethod
    def from_env(cls) -> Settings:
        return cls(
            candles_bucket=os.environ.get("CANDLES_BUCKET", "tradowix-candles"),
            keys_table=os.environ.get("KEYS_TABLE", "tradowix-keys"),
            state_table=os.environ.get("STATE_TABLE", "tradowix-state"),
            retention_days=_int("RETENTION_DAYS", 3),
            build_retention_days=_int("BUILD_RETENTION_DAYS", 7),
            key_cache_seconds=_int("KEY_CACHE_SECONDS", 30),
            cookie_max_age=_int("COOKIE_MAX_AGE", 12 * 3600),
            max_limit=_int("MAX_LIMIT", 50_000),
            day_cache_entries=_int("DAY_CACHE_ENTRIES", 64),
            ws_url=os.environ.get("WS_URL", ""),
            connections_table=os.environ.get("CONNECTIONS_TABLE", "tradowix-connections"),
            ws_management_endpoint=os.environ.get("WS_MANAGEMENT_ENDPOINT", ""),
            live_throttle_seconds=float(os.environ.get("LIVE_THROTTLE_SECONDS") or 2.0),
            admin_secret_parameter=os.environ.get("ADMIN_SECRET_PARAMETER", "/tradowix/admin-secret"),
            session_token_parameter=os.environ.get("SESSION_TOKEN_PARAMETER", "/tradowix/session-token"),
            admin_session_max_age=_int("ADMIN_SESSION_MAX_AGE", 8 * 3600),
            rate_limit_per_minute=_int("RATE_LIMIT_PER_MINUTE", 600),
        )
