"""The partner client: the HTTP API (`ChartApiClient`, `AsyncChartApiClient`, typed errors) and the
live WebSocket stream of a Tradowix chart deployment.

    from tradowix_bot.client import ChartApiClient

It needs only httpx and websockets (the package's base dependencies) and the shared domain
model: it never imports server/, strategy/, collector/ or cli/ (tests/unit/test_package_layout.py).
"""

from .chart_client import (
    AsyncChartApiClient,
    AuthenticationError,
    BadRequestError,
    ChartApiClient,
    ChartApiError,
    ChartTimeoutError,
    NetworkError,
    NotFoundError,
    RateLimitedError,
    ServerError,
    SymbolForbiddenError,
    UnavailableError,
)
from .live_client import LiveOptions, parse_subscriptions, subscribe_live

__all__ = [
    "AsyncChartApiClient",
    "AuthenticationError",
    "BadRequestError",
    "ChartApiClient",
    "ChartApiError",
    "ChartTimeoutError",
    "LiveOptions",
    "NetworkError",
    "NotFoundError",
    "RateLimitedError",
    "ServerError",
    "SymbolForbiddenError",
    "UnavailableError",
    "parse_subscriptions",
    "subscribe_live",
]
