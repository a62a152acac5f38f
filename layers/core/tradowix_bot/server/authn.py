"""Who is calling: the one place that turns what a request or connection carries into a `Caller`
(or a typed `Unauthorized`), for the HTTP API, the WebSocket's connect and subscribe, and the
live publisher's periodic re-check of open connections.

The rules, in order:
- **Open mode**: while the keys table exists and holds no key, everyone is admitted without a
  key (`Caller.open`). A table that cannot be read is an outage (503), never open mode
  (`KeyRegistry.any_keys` raises `Unavailable`). A key sent in open mode is not checked.
- A raw key (`twk_...`) is checked first; otherwise a signed session token (the gate page's
  cookie, or the `?session=` of a browser's ws_url) names a key id; otherwise `missing_key`.
- A connection accepted earlier is re-checked by the key id it stored; a key-less one made in
  open mode is refused (`missing_key`) once a first key exists.
- Codes: `missing_key`, `invalid_key`, `key_disabled` (keys.py), `invalid_session`,
  `session_expired` (sessions.py, and the owner's chart session in keys.py); reading a symbol
  the key may not read is `symbol_forbidden` (403).

Rate limits are counted here too (`charge`), but only where each channel says a request
starts to cost: every keyed HTTP request, each WebSocket subscribe.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ..errors import Unauthorized
from .keys import KeyRecord, KeyRegistry, require_symbol
from .ratelimit import RateDecision, RateLimiter
from .sessions import SessionSigner

# How each channel tells a caller without a key to send one (the rest of the sentence is shared).
SEND_KEY_HTTP = "send it in the X-Api-Key header (or sign in at /gate.html)"
SEND_KEY_WS = "connect with ?api_key=twk_... or an X-Api-Key header"


@dataclass(frozen=True)
class Caller:
    key: KeyRecord | None  # None: open mode (no key exists yet)
    raw_key: str | None = None  # only when the request itself carried the key

    @property
    def open(self) -> bool:
        return self.key is None

    @property
    def key_id(self) -> str | None:
        return self.key.key_id if self.key else None

    @property
    def all_symbols(self) -> bool:
        return self.key is None or self.key.all_symbols

    def may_read(self, symbol: str) -> bool:
        return self.key is None or self.key.may_read(symbol)

    def require_symbol(self, symbol: str) -> None:
        """Forbidden (`symbol_forbidden`) unless this caller may read `symbol`."""
        require_symbol(self.key, symbol)


OPEN = Caller(None)


class Authenticator:
    def __init__(
        self,
        keys: KeyRegistry,
        *,
        sessions: Callable[[], SessionSigner] | None = None,
        rate_limiter: RateLimiter | None = None,
    ):
        self.keys = keys
        # A callable: the signer's secret is read only when a session token is actually shown.
        # None: this channel accepts no session tokens.
        self.sessions = sessions
        self.rate_limiter = rate_limiter

    def identify(
        self, raw_key: str | None = None, session_token: str | None = None, *, send_key: str = SEND_KEY_HTTP
    ) -> Caller:
        """The caller of a new request or connection. `send_key` ends the `missing_key` message
        (how this channel takes a key)."""
        if not self.keys.any_keys():
            return OPEN
        if raw_key:
            return Caller(self.keys.authenticate(raw_key), raw_key)
        if session_token and self.sessions is not None:
            return Caller(self.keys.authenticate_id(self.sessions().key_id(session_token)))
        raise Unauthorized(f"an API key is required: {send_key}", code="missing_key")

    def recheck(self, key_id: str | None) -> Caller:
        """The caller behind a connection accepted earlier with `key_id` (None: in open mode)."""
        if key_id:
            return Caller(self.keys.authenticate_id(key_id))
        if self.keys.any_keys():
            raise Unauthorized("API keys are now required; reconnect with your key", code="missing_key")
        return OPEN

    def charge(self, caller: Caller) -> RateDecision | None:
        """Count one request of `caller` against its key's rate limit. None when nothing was
        counted (open mode, no limiter on this channel, or the count could not be made)."""
        if caller.key is None or self.rate_limiter is None:
            return None
        return self.rate_limiter.hit(caller.key.key_id, caller.key.rate_limit)

    def admit(self, caller: Caller) -> RateDecision | None:
        """`charge`, raising `RateLimited` when the caller is over its limit."""
        decision = self.charge(caller)
        if decision is not None and not decision.allowed:
            raise decision.refuse()
        return decision
