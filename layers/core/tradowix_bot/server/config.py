"""Settings read from the environment once, validated at start. Names match template.yaml's
function environment.

A process that lacks a name it needs (the bucket, a table) or has a number that is not one
stops at start with one message naming every bad variable: it must never fall back to a
default bucket or table (on AWS that could be someone else's) or fail later, mid-request.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

REQUIRED = ("CANDLES_BUCKET", "KEYS_TABLE", "STATE_TABLE")


class SettingsError(ValueError):
    """The environment does not describe a usable deployment; the message names each variable."""


class _Reader:
    def __init__(self, environ):
        self.environ = environ
        self.problems: list[str] = []

    def text(self, name: str, default: str = "", *, required: bool = False) -> str:
        value = (self.environ.get(name) or "").strip()
        if required and not value:
            self.problems.append(f"{name} is not set")
        return value or default

    def integer(self, name: str, default: int, *, minimum: int = 1) -> int:
        raw = (self.environ.get(name) or "").strip()
        if not raw:
            return default
        try:
            value = int(raw)
        except ValueError:
            self.problems.append(f"{name}={raw!r} is not a whole number")
            return default
        if value < minimum:
            self.problems.append(f"{name}={value} is below {minimum}")
        return value

    def number(self, name: str, default: float, *, minimum: float = 0.0) -> float:
        raw = (self.environ.get(name) or "").strip()
        if not raw:
            return default
        try:
            value = float(raw)
        except ValueError:
            self.problems.append(f"{name}={raw!r} is not a number")
            return default
        if value < minimum:
            self.problems.append(f"{name}={value:g} is below {minimum:g}")
        return value


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
    # live WebSocket (required by the WebSocket function and the live publisher: `require`)
    connections_table: str = ""
    ws_management_endpoint: str = ""
    live_throttle_seconds: float = 2.0
    live_revalidate_seconds: float = 10.0  # the publisher's key re-check period
    admin_secret_parameter: str = "/tradowix/admin-secret"
    session_token_parameter: str = "/tradowix/session-token"
    admin_session_max_age: int = 8 * 3600
    rate_limit_per_minute: int = 600  # per key, unless its record says otherwise

    @classmethod
    def from_env(cls, *, require: tuple[str, ...] = (), environ=None) -> Settings:
        """Validated settings; SettingsError names every missing or malformed variable.
        CANDLES_BUCKET, KEYS_TABLE and STATE_TABLE are always required; `require` adds others
        (CONNECTIONS_TABLE, WS_MANAGEMENT_ENDPOINT)."""
        env = _Reader(os.environ if environ is None else environ)
        needed = set(REQUIRED) | set(require)
        settings = cls(
            candles_bucket=env.text("CANDLES_BUCKET", required=True),
            keys_table=env.text("KEYS_TABLE", required=True),
            state_table=env.text("STATE_TABLE", required=True),
            retention_days=env.integer("RETENTION_DAYS", 3),
            build_retention_days=env.integer("BUILD_RETENTION_DAYS", 7),
            key_cache_seconds=env.integer("KEY_CACHE_SECONDS", 30),
            cookie_max_age=env.integer("COOKIE_MAX_AGE", 12 * 3600, minimum=60),
            max_limit=env.integer("MAX_LIMIT", 50_000),
            day_cache_entries=env.integer("DAY_CACHE_ENTRIES", 64),
            ws_url=env.text("WS_URL"),
            connections_table=env.text("CONNECTIONS_TABLE", required="CONNECTIONS_TABLE" in needed),
            ws_management_endpoint=env.text(
                "WS_MANAGEMENT_ENDPOINT", required="WS_MANAGEMENT_ENDPOINT" in needed
            ),
            live_throttle_seconds=env.number("LIVE_THROTTLE_SECONDS", 2.0),
            live_revalidate_seconds=env.number("LIVE_REVALIDATE_SECONDS", 10.0, minimum=1.0),
            admin_secret_parameter=env.text("ADMIN_SECRET_PARAMETER", "/tradowix/admin-secret"),
            session_token_parameter=env.text("SESSION_TOKEN_PARAMETER", "/tradowix/session-token"),
            admin_session_max_age=env.integer("ADMIN_SESSION_MAX_AGE", 8 * 3600, minimum=60),
            rate_limit_per_minute=env.integer("RATE_LIMIT_PER_MINUTE", 600),
        )
        if env.problems:
            raise SettingsError("invalid settings: " + "; ".join(env.problems) + " (see template.yaml)")
        return settings
