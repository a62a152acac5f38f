"""The one composition root: every server part, built from one validated `Settings`.

The API function, the WebSocket function, the collector's live publisher and the CLI each hold a
`Services` and take their parts from it; nothing else constructs KeyRegistry, StateStore,
CandleStore, MarketData, ... for them. Each part is built once, on first use, and kept (a warm
Lambda container reuses it across invocations), except the few that must be rebuilt on every use
(`authenticator`, `signer`, `admin_sessions`: see there). `reset()` forgets them all (tests).

Building a part makes no AWS call, and parts hold no boto3 client: they ask `aws.client(...)` on
each call, which keys clients per principal. So in the local stack, where several functions run
in one process each with its role's credentials (`aws.acting_as`), a shared part still calls AWS
as whoever uses it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING

from .admin import AdminSecretStore, AdminSessions, LoginThrottle, SessionTokenStore
from .authn import Authenticator
from .config import Settings
from .keys import KeyRegistry
from .market import MarketData
from .ratelimit import RateLimiter
from .sessions import SessionSigner
from .state import StateStore
from .store import CandleStore
from .udf import Datafeed

if TYPE_CHECKING:  # the live parts are imported when first built: the HTTP API never loads them
    from .live_connections import ConnectionStore
    from .live_fanout import LivePublisher
    from .live_socket import LiveSocket
    from .metrics import CountedPoster


def live_settings() -> Settings:
    """The settings of the WebSocket function and the collector's live publisher: they also need
    the connections table and the @connections endpoint."""
    return Settings.from_env(require=("CONNECTIONS_TABLE", "WS_MANAGEMENT_ENDPOINT"))


class Services:
    def __init__(
        self,
        read_settings: Callable[[], Settings] = Settings.from_env,
        *,
        day_index_seconds: float = 0.0,
        metrics_service: str = "ws",
    ):
        """`read_settings` is called once, on first use (a bad variable then stops the process,
        named). `day_index_seconds`: how long the candle store trusts its listing of a symbol's
        day objects (CandleStore). `metrics_service`: the service the @connections posts are
        counted under (metrics.recorder)."""
        self._read_settings = read_settings
        self._day_index_seconds = day_index_seconds
        self._metrics_service = metrics_service
        self._built: dict[str, object] = {}

    def _once(self, name: str, build: Callable[[], object]):
        part = self._built.get(name)
        if part is None:
            part = self._built[name] = build()
        return part

    def reset(self) -> None:
        """Forget every part and the settings: the next use builds them again (tests)."""
        self._built.clear()

    # -- kept parts ---------------------------------------------------------------------------
    def settings(self) -> Settings:
        return self._once("settings", self._read_settings)

    def keys(self) -> KeyRegistry:
        s = self.settings()
        return self._once("keys", lambda: KeyRegistry(s.keys_table, cache_seconds=s.key_cache_seconds))

    def rate_limiter(self) -> RateLimiter:
        s = self.settings()
        return self._once(
            "rate_limiter", lambda: RateLimiter(s.state_table, default_per_minute=s.rate_limit_per_minute)
        )

    def state(self) -> StateStore:
        return self._once("state", lambda: StateStore(self.settings().state_table))

    def store(self) -> CandleStore:
        s = self.settings()
        return self._once(
            "store",
            lambda: CandleStore(
                s.candles_bucket, cache_entries=s.day_cache_entries, index_seconds=self._day_index_seconds
            ),
        )

    def market(self) -> MarketData:
        s = self.settings()
        return self._once(
            "market", lambda: MarketData(self.store(), self.state(), max_limit=s.max_limit, ws_url=s.ws_url)
        )

    def datafeed(self) -> Datafeed:
        return self._once("datafeed", lambda: Datafeed(self.market()))

    def admin_secret(self) -> AdminSecretStore:
        return self._once("admin_secret", lambda: AdminSecretStore(self.settings().admin_secret_parameter))

    def login_throttle(self) -> LoginThrottle:
        return self._once("login_throttle", lambda: LoginThrottle(self.state()))

    def session_token(self) -> SessionTokenStore:
        return self._once("session_token", lambda: SessionTokenStore(self.settings().session_token_parameter))

    def connections(self) -> ConnectionStore:
        from .live_connections import ConnectionStore

        return self._once("connections", lambda: ConnectionStore(self.settings().connections_table))

    def poster(self) -> CountedPoster:
        from .live_poster import ConnectionPoster
        from .metrics import CountedPoster, recorder

        return self._once(
            "poster",
            lambda: CountedPoster(
                ConnectionPoster(self.settings().ws_management_endpoint), recorder(self._metrics_service)
            ),
        )

    def live_socket(self) -> LiveSocket:
        from .live_socket import LiveSocket

        return self._once(
            "live_socket",
            lambda: LiveSocket(
                self.keys(),
                self.connections(),
                self.market(),
                self.poster(),
                # Read only: the partner API creates the secret at the first gate sign-in.
                sessions=functools.partial(self.signer, create_secret=False),
                rate_limiter=self.rate_limiter(),
            ),
        )

    def publisher(self) -> LivePublisher:
        """The collector's live fan-out (not started)."""
        from .live_fanout import LivePublisher

        s = self.settings()
        return self._once(
            "publisher",
            lambda: LivePublisher(
                self.connections(),
                self.poster(),
                # its own registry: re-checked every round, and it is no key's use
                KeyRegistry(
                    s.keys_table,
                    cache_seconds=min(s.key_cache_seconds, s.live_revalidate_seconds),
                    record_use=False,
                ),
                store=self.store(),
                throttle_seconds=s.live_throttle_seconds,
                revalidate_seconds=s.live_revalidate_seconds,
            ),
        )

    # -- rebuilt on every use -----------------------------------------------------------------
    def authenticator(self) -> Authenticator:
        # Built from the (kept) parts on each request, so a replaced part is used.
        return Authenticator(self.keys(), sessions=self.signer, rate_limiter=self.rate_limiter())

    def signer(self, *, create_secret: bool = True) -> SessionSigner:
        # Not kept: StateStore caches the secret, and a failed first read must be retried.
        s = self.settings()
        return SessionSigner(self.state().cookie_secret(create=create_secret), s.cookie_max_age)

    def admin_sessions(self) -> AdminSessions:
        # Not kept: the secret's fingerprint (cached in AdminSecretStore) ends sessions when it changes.
        s = self.settings()
        return AdminSessions(
            self.state().cookie_secret(),
            self.admin_secret().fingerprint(),
            s.admin_session_max_age,
            self.state(),
        )

    def warm(self) -> None:
        """Create the boto3 clients and the parts requests use now, during Lambda's init, as AWS
        recommends: Lambda runs init at full CPU and before the first request's clock starts;
        creating clients lazily made the first request after a cold start 2.5x the floor's
        (tests/bench/bench_coldstart.py). No AWS call happens here. The settings are validated
        first and a bad one stops init with a message naming it; anything else missing (no region
        configured, say) is left to first use."""
        from . import aws

        self.settings()
        try:
            aws.client("s3")
            aws.resource("dynamodb")
            self.keys(), self.state(), self.market()
        except Exception:  # noqa: BLE001 - init must never fail on this; first use retries
            pass
