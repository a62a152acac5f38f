"""Per-key rate limits: requests per minute, counted in the state table.

Fixed one-minute windows (aligned to the clock's minute): each keyed request adds 1 to the
item `pk = "ratelimit#<key_id>"`, `sk = <window start>` with one atomic UpdateItem, and the
answer says how many are left. Why there (README, "Per-key rate limits"):

- exact across concurrent Lambdas: DynamoDB's ADD is atomic, so 10 containers serving one
  key share one count (per-container counters would allow 10x the limit, and forget on
  every cold start);
- $0.625 per million requests (1 write unit each, on demand), against $2.50 per million more
  for a REST API with usage plans (HTTP APIs have no per-key throttling at all), whose
  throttles AWS documents as best-effort;
- one partition key per key: no hot partition however many partners there are.

Once a container has seen a window exhausted it refuses that key's further requests in the
window from memory, so a flood past the limit costs no writes. The counters expire through
the table's TTL (`expires_at`). If the state table cannot be reached the request is served
without a count (the limiter must not take the API down with it) and the failure logged.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from ..errors import RateLimited, Unavailable
from . import aws
from .storage_errors import translate

WINDOW = 60
DEFAULT_PER_MINUTE = 600
MAX_PER_MINUTE = 1_000_000


@dataclass(frozen=True)
class RateDecision:
    limit: int
    remaining: int
    reset: int  # whole seconds until the window resets (at least 1)
    allowed: bool

    def headers(self) -> dict[str, str]:
        return {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Reset": str(self.reset),
        }

    def refuse(self) -> RateLimited:
        return RateLimited(
            f"rate limit of {self.limit} requests per minute for this key reached; retry in {self.reset} s",
            retry_after=self.reset,
        )


def validate_per_minute(value: int | None) -> int | None:
    from ..errors import BadRequest

    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_PER_MINUTE:
        raise BadRequest(
            f"rate_limit must be a whole number of requests per minute from 1 to {MAX_PER_MINUTE:,}",
            code="invalid_rate_limit",
        )
    return value


class RateLimiter:
    def __init__(
        self,
        state_table: str,
        *,
        default_per_minute: int = DEFAULT_PER_MINUTE,
        clock: Callable[[], float] = time.time,
    ):
        self.state_table = state_table
        self.default_per_minute = default_per_minute
        self._clock = clock
        self._exhausted: dict[str, int] = {}  # key id -> window known to be used up
        self._lock = threading.Lock()

    @property
    def _table(self):
        return aws.table(self.state_table)

    def limit_of(self, key_rate_limit: int | None) -> int:
        return key_rate_limit or self.default_per_minute

    def usage(self, key_id: str, key_rate_limit: int | None = None) -> dict | None:
        """What `key_id` used of its limit in the current window, for the admin panel; None when
        the count cannot be read."""
        now = self._clock()
        window = int(now // WINDOW) * WINDOW
        try:
            with translate("the state store (DynamoDB)"):
                item = self._table.get_item(Key={"pk": f"ratelimit#{key_id}", "sk": str(window)}).get("Item")
        except Unavailable:
            return None
        return {
            "used": int(item["hits"]) if item else 0,
            "limit": self.limit_of(key_rate_limit),
            "reset_seconds": max(1, math.ceil(window + WINDOW - now)),
        }

    def hit(self, key_id: str, key_rate_limit: int | None = None) -> RateDecision | None:
        """Count one request of `key_id`. None when the count could not be made (served anyway)."""
        limit = self.limit_of(key_rate_limit)
        now = self._clock()
        window = int(now // WINDOW) * WINDOW
        reset = max(1, math.ceil(window + WINDOW - now))
        with self._lock:
            if self._exhausted.get(key_id) == window:
                return RateDecision(limit, 0, reset, False)
        try:
            with translate("the state store (DynamoDB)"):
                attributes = self._table.update_item(
                    Key={"pk": f"ratelimit#{key_id}", "sk": str(window)},
                    UpdateExpression="ADD hits :one SET expires_at = if_not_exists(expires_at, :expires)",
                    ExpressionAttributeValues={":one": 1, ":expires": window + 2 * WINDOW},
                    ReturnValues="UPDATED_NEW",
                )["Attributes"]
        except Unavailable as exc:
            from .logs import get_logger

            get_logger("tradowix-ratelimit").warning(
                "rate limit not counted", extra={"reason": repr(exc.__cause__)}
            )
            return None
        hits = int(attributes["hits"])
        if hits > limit:
            with self._lock:
                self._exhausted = {k: w for k, w in self._exhausted.items() if w == window}
                self._exhausted[key_id] = window
            return RateDecision(limit, 0, reset, False)
        return RateDecision(limit, limit - hits, reset, True)
