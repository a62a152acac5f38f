"""Partner SDK: the HTTP API and the live WebSocket of a Tradowix chart deployment.

Existing partner code keeps working unchanged::

    from tradowix_bot.chart_client import ChartApiClient
    client = ChartApiClient("https://example-host", "twk_KEY")
    client.verify()
    data = client.candles("BTCUSD-OTC", timeframe=60)
    client.subscribe_live_sync(on_msg, symbol="BTCUSD-OTC", timeframe=60)

This module needs only httpx and websockets (the package's base dependencies): it must
never import the server side (boto3, fastapi, ...).

Errors are typed (`AuthenticationError`, `SymbolForbiddenError`, `NotFoundError`,
`BadRequestError`, `RateLimitedError`, `UnavailableError`, all `ChartApiError`) and carry
the server's `{"error", "message"}`. Requests are retried with exponential backoff and
jitter on 429/502/503/504, timeouts and connection failures, honouring `Retry-After`.

Live: `subscribe_live`/`subscribe_live_sync` stream the WebSocket; the stream itself is in
`tradowix_bot.live_client` (`LiveOptions` is re-exported here).
"""

from __future__ import annotations

import asyncio
import email.utils
import itertools
import logging
import os
import random
import re
import threading
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any

import httpx

if TYPE_CHECKING:
    from tradowix_bot.live_client import LiveOptions

__all__ = [
    "ChartApiClient",
    "AsyncChartApiClient",
    "ChartApiError",
    "AuthenticationError",
    "SymbolForbiddenError",
    "NotFoundError",
    "BadRequestError",
    "RateLimitedError",
    "UnavailableError",
    "ChartTimeoutError",
    "LiveOptions",
]

logger = logging.getLogger("tradowix_bot.chart_client")

ENV_URL = "TRADOWIX_CHART_URL"
ENV_KEY = "TRADOWIX_CHART_API_KEY"
RETRY_STATUSES = {429, 502, 503, 504}


# -- errors ----------------------------------------------------------------------------------


class ChartApiError(Exception):
    """Any failure talking to the chart API. `status` is the HTTP status (None if none)."""

    status: int | None = None

    def __init__(self, message: str, *, status: int | None = None, error: str | None = None, body=None):
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status
        self.error = error  # the server's short code, e.g. "invalid_key"
        self.body = body


class AuthenticationError(ChartApiError):
    """Missing, invalid or disabled API key (HTTP 401, WebSocket 401 handshake or close 4401)."""

    status = 401


class SymbolForbiddenError(ChartApiError):
    """The key may not read this symbol (HTTP 403, or a WebSocket refusal)."""

    status = 403


class NotFoundError(ChartApiError):
    """No stored data for this symbol (HTTP 404)."""

    status = 404


class BadRequestError(ChartApiError):
    """Bad query: missing symbol, bad timeframe, bad limit or range (HTTP 400)."""

    status = 400


class RateLimitedError(ChartApiError):
    """Rate limit for this key (HTTP 429); `retry_after` seconds, from the server."""

    status = 429

    def __init__(self, message: str, *, retry_after: float | None = None, **kw):
        super().__init__(message, **kw)
        self.retry_after = retry_after


class UnavailableError(ChartApiError):
    """Storage, upstream or the network is temporarily unavailable (503, 502, 504, connection)."""

    status = 503

    def __init__(self, message: str, *, retry_after: float | None = None, **kw):
        super().__init__(message, **kw)
        self.retry_after = retry_after


class ChartTimeoutError(UnavailableError):
    """The server did not answer within the client's timeout (after retries)."""

    status = None


_BY_STATUS: dict[int, type[ChartApiError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: SymbolForbiddenError,
    404: NotFoundError,
    429: RateLimitedError,
    502: UnavailableError,
    503: UnavailableError,
    504: UnavailableError,
}


def _retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header: delta-seconds or an HTTP date."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def error_from_response(response: httpx.Response) -> ChartApiError:
    """The typed error for a non-2xx answer, carrying the server's code and message."""
    body: Any = None
    code = message = None
    try:
        body = response.json()
    except ValueError:
        body = response.text
    if isinstance(body, dict):
        code = body.get("error") if isinstance(body.get("error"), str) else None
        message = body.get("message") if isinstance(body.get("message"), str) else None
    if not message:
        text = body if isinstance(body, str) else ""
        message = f"HTTP {response.status_code} {response.reason_phrase}" + (
            f": {text.strip()[:200]}" if text.strip() else ""
        )
    cls = _BY_STATUS.get(response.status_code, ChartApiError)
    kw: dict[str, Any] = {"status": response.status_code, "error": code, "body": body}
    if cls in (RateLimitedError, UnavailableError):
        kw["retry_after"] = _retry_after(response.headers.get("retry-after"))
    return cls(message, **kw)


# -- shared request logic ----------------------------------------------------------------------


def _json_answer(response: httpx.Response) -> dict:
    try:
        return response.json()
    except ValueError:
        raise ChartApiError(
            f"{response.request.method} {response.request.url.path}: the answer is not JSON "
            f"({response.headers.get('content-type', 'no content type')}); is the base URL the chart API's?",
            status=response.status_code,
            error="not_json",
        ) from None


def _redact_url(url: str) -> str:
    """A URL safe to log: the api_key query value is hidden."""
    return re.sub(r"(api_key=)[^&\s]+", r"\1***", url)


def _drop_none(params: dict) -> dict:
    return {k: v for k, v in params.items() if v is not None}


class _Base:
    def __init__(
        self,
        base_url: str | None = None,
        api_key: str | None = None,
        *,
        timeout: float = 10.0,
        max_retries: int = 3,
        backoff: float = 0.5,
        max_backoff: float = 30.0,
        max_retry_wait: float = 60.0,
    ):
        base_url = base_url or os.environ.get(ENV_URL)
        if not base_url:
            raise ValueError(f"no chart URL: pass base_url or set {ENV_URL} (e.g. https://tradowixapi.site)")
        if "://" not in base_url:
            base_url = "https://" + base_url
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key if api_key is not None else (os.environ.get(ENV_KEY) or None)
        self.timeout = timeout
        self.max_retries = max_retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.max_retry_wait = max_retry_wait

    def __repr__(self) -> str:  # never shows the key
        return f"{type(self).__name__}({self.base_url!r}, api_key={'***' if self.api_key else None})"

    def _headers(self) -> dict[str, str]:
        headers = {"Accept": "application/json", "User-Agent": "tradowix-chart-client/1"}
        if self.api_key:
            headers["X-Api-Key"] = self.api_key
        return headers

    def _retry_wait(self, method: str, path: str, attempt: int, failure) -> float:
        """Seconds to wait after failed attempt `attempt` (a transport error or a non-2xx
        answer) before the next; raises the typed error when it is not retried."""
        error: ChartApiError
        if isinstance(failure, httpx.TimeoutException):
            error = ChartTimeoutError(f"{method} {path}: no answer within {self.timeout}s ({failure!r})")
        elif isinstance(failure, httpx.TransportError):
            error = UnavailableError(f"{method} {path}: cannot reach {self.base_url} ({failure})")
        else:
            error = error_from_response(failure)
            if failure.status_code not in RETRY_STATUSES:
                raise error
        delay = self._delay(attempt, error)
        if delay is None:
            raise error
        logger.info("retrying %s %s in %.1fs after: %s", method, path, delay, error.message)
        return delay

    def _delay(self, attempt: int, error: ChartApiError | None) -> float | None:
        """Seconds to wait before retry `attempt` (1-based), or None to give up."""
        if attempt > self.max_retries:
            return None
        server = getattr(error, "retry_after", None)
        if server is not None:
            return server if server <= self.max_retry_wait else None
        # Full jitter: spreads clients that failed together.
        return random.uniform(0, min(self.max_backoff, self.backoff * 2 ** (attempt - 1)))

    @staticmethod
    def _verify_body(api_key: str | None) -> dict | None:
        return {"api_key": api_key} if api_key else None

    @staticmethod
    def _candles_params(symbol, timeframe, limit, start, end) -> dict:
        return _drop_none(
            {"symbol": symbol, "timeframe": timeframe, "limit": limit, "start": start, "end": end}
        )


# -- synchronous client ------------------------------------------------------------------------


class ChartApiClient(_Base):
    """Blocking client. `base_url`/`api_key` default to TRADOWIX_CHART_URL / TRADOWIX_CHART_API_KEY."""

    def __init__(self, base_url: str | None = None, api_key: str | None = None, *, transport=None, **kw):
        super().__init__(base_url, api_key, **kw)
        self._http = httpx.Client(base_url=self.base_url, timeout=self.timeout, transport=transport)

    def close(self) -> None:
        self._http.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _request(self, method: str, path: str, *, params=None, json_body=None) -> dict:
        for attempt in itertools.count(1):
            try:
                response = self._http.request(
                    method, path, params=params, json=json_body, headers=self._headers()
                )
            except httpx.TransportError as exc:
                time.sleep(self._retry_wait(method, path, attempt, exc))
                continue
            if response.is_success:
                return _json_answer(response)
            time.sleep(self._retry_wait(method, path, attempt, response))

    # The partner contract's calls ------------------------------------------------------------

    def verify(self) -> dict:
        """POST /api/auth/verify: `{"ok", "key_id", "name", "all_symbols", "symbols"}`."""
        return self._request("POST", "/api/auth/verify", json_body=self._verify_body(self.api_key))

    def symbols(self) -> dict:
        """GET /api/symbols: the symbols this key may read, with categories."""
        return self._request("GET", "/api/symbols")

    def candles(
        self,
        symbol: str,
        timeframe: int = 60,
        limit: int | None = None,
        *,
        start: int | None = None,
        end: int | None = None,
    ) -> dict:
        """GET /api/candles: bars oldest first; no `limit` means every stored bar."""
        return self._request(
            "GET", "/api/candles", params=self._candles_params(symbol, timeframe, limit, start, end)
        )

    def timing(self, symbol: str, timeframe: int = 60) -> dict:
        return self._request("GET", "/api/timing", params={"symbol": symbol, "timeframe": timeframe})

    def live_status(self) -> dict:
        return self._request("GET", "/api/live/status")

    def docs(self) -> dict:
        return self._request("GET", "/api/docs")

    # Live (the stream itself is in tradowix_bot.live_client) ---------------------------------

    def ws_url(self) -> str:
        """The WebSocket URL to connect to, with the key: from /api/live/status, else derived."""
        from tradowix_bot import live_client

        return live_client.ws_url_sync(self)

    def derived_ws_url(self) -> str:
        """The WebSocket URL guessed from the base URL, when /api/live/status gives none."""
        from tradowix_bot import live_client

        return live_client.derived_ws_url(self.base_url)

    async def subscribe_live(self, on_msg, symbol: str | None = None, timeframe: int = 60, **kw) -> None:
        """Async live stream (see AsyncChartApiClient.subscribe_live)."""
        from tradowix_bot import live_client

        await live_client.subscribe_live_from_sync_client(self, on_msg, symbol, timeframe, **kw)

    def subscribe_live_sync(self, on_msg, symbol: str | None = None, timeframe: int = 60, **kw) -> None:
        """Blocks, handing every live message (a dict) to `on_msg(msg)`, until `stop` is set,
        `max_messages` were delivered, on_msg raises, or the key is refused."""
        from tradowix_bot import live_client

        live_client.run_blocking(self.subscribe_live(on_msg, symbol=symbol, timeframe=timeframe, **kw))


# -- asyncio client ----------------------------------------------------------------------------


class AsyncChartApiClient(_Base):
    """The asyncio twin of ChartApiClient: the same calls, awaited."""

    def __init__(self, base_url: str | None = None, api_key: str | None = None, *, transport=None, **kw):
        super().__init__(base_url, api_key, **kw)
        self._http = httpx.AsyncClient(base_url=self.base_url, timeout=self.timeout, transport=transport)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc):
        await self.aclose()

    async def _request(self, method: str, path: str, *, params=None, json_body=None) -> dict:
        for attempt in itertools.count(1):
            try:
                response = await self._http.request(
                    method, path, params=params, json=json_body, headers=self._headers()
                )
            except httpx.TransportError as exc:
                await asyncio.sleep(self._retry_wait(method, path, attempt, exc))
                continue
            if response.is_success:
                return _json_answer(response)
            await asyncio.sleep(self._retry_wait(method, path, attempt, response))

    async def verify(self) -> dict:
        return await self._request("POST", "/api/auth/verify", json_body=self._verify_body(self.api_key))

    async def symbols(self) -> dict:
        return await self._request("GET", "/api/symbols")

    async def candles(
        self,
        symbol: str,
        timeframe: int = 60,
        limit: int | None = None,
        *,
        start: int | None = None,
        end: int | None = None,
    ) -> dict:
        return await self._request(
            "GET", "/api/candles", params=self._candles_params(symbol, timeframe, limit, start, end)
        )

    async def timing(self, symbol: str, timeframe: int = 60) -> dict:
        return await self._request("GET", "/api/timing", params={"symbol": symbol, "timeframe": timeframe})

    async def live_status(self) -> dict:
        return await self._request("GET", "/api/live/status")

    async def docs(self) -> dict:
        return await self._request("GET", "/api/docs")

    # Live (the stream itself is in tradowix_bot.live_client) ---------------------------------

    async def ws_url(self) -> str:
        from tradowix_bot import live_client

        return await live_client.ws_url_async(self)

    def derived_ws_url(self) -> str:
        from tradowix_bot import live_client

        return live_client.derived_ws_url(self.base_url)

    async def subscribe_live(
        self,
        on_msg: Callable[[dict], Any] | Callable[[dict], Awaitable[Any]],
        symbol: str | None = None,
        timeframe: int = 60,
        *,
        symbols: Iterable[str] | None = None,
        timeframes: Iterable[int] | None = None,
        stop: asyncio.Event | threading.Event | None = None,
        max_messages: int | None = None,
        options: LiveOptions | None = None,
        on_state: Callable[[str], Any] | None = None,
    ) -> None:
        """Stream live messages to `on_msg` (sync or async) until `stop` is set, `max_messages`
        were delivered, on_msg raises, or the stream fails (a typed ChartApiError: see
        tradowix_bot.live_client).

        `symbols` subscribes several symbols, `timeframes` several timeframes of each, all on
        one connection (messages carry `symbol` and `timeframe`). `on_state(state)` hears
        connecting / live / reconnecting / failed.
        """
        from tradowix_bot import live_client

        subscriptions = live_client.parse_subscriptions(symbol, timeframe, symbols, timeframes)
        await live_client.subscribe_live(
            self,
            await self.ws_url(),
            on_msg,
            subscriptions,
            stop=stop,
            max_messages=max_messages,
            options=options,
            on_state=on_state,
        )


def __getattr__(name: str):
    # The live names moved to tradowix_bot.live_client; imported on first use so that module
    # can import this one (its errors) without a cycle at import time.
    if name in _LIVE_NAMES:
        from tradowix_bot import live_client

        return getattr(live_client, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


_LIVE_NAMES = {"LiveOptions"}
