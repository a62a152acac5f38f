"""Partner SDK: the HTTP API and the live WebSocket of a Tradowix chart deployment.

Existing partner code keeps working unchanged (`tradowix_bot.chart_client` is the old path of
this module, `tradowix_bot.client` exports the same names)::

    from tradowix_bot.chart_client import ChartApiClient
    client = ChartApiClient("https://example-host", "twk_KEY")
    client.verify()
    data = client.candles("BTCUSD-OTC", timeframe=60)
    client.subscribe_live_sync(on_msg, symbol="BTCUSD-OTC", timeframe=60)

This module needs only httpx and websockets (the package's base dependencies): it must
never import the server side (boto3, fastapi, ...).

Errors are typed (`AuthenticationError`, `SymbolForbiddenError`, `NotFoundError`,
`BadRequestError`, `RateLimitedError`, `UnavailableError` (with `NetworkError` and
`ChartTimeoutError` for failures without an HTTP answer), `ServerError` (500), all
`ChartApiError`) and carry the server's `{"error", "message"}`. Requests are retried with
exponential backoff and jitter on 429/502/503/504, timeouts and connection failures,
honouring `Retry-After`.

Repeated polls of the same GET send `If-None-Match` with the answer's ETag; a 304 gives the
answer kept from before (its `timing` brought up to date), so an unchanged answer costs the
server and the network almost nothing. Answers are gzip-compressed when the server offers it.

Live: `subscribe_live`/`subscribe_live_sync` stream the WebSocket; the stream itself is in
`tradowix_bot.client.live_client` (`LiveOptions` is re-exported here).
"""

from __future__ import annotations

import asyncio
import email.utils
import itertools
import json
import logging
import os
import random
import re
import threading
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin, urlsplit, urlunsplit

import httpx

from ..timing import bar_timing

if TYPE_CHECKING:
    from tradowix_bot.client.live_client import LiveOptions

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
    "NetworkError",
    "ChartTimeoutError",
    "ServerError",
    "LiveOptions",
]

logger = logging.getLogger("tradowix_bot.chart_client")

ENV_URL = "TRADOWIX_CHART_URL"
ENV_KEY = "TRADOWIX_CHART_API_KEY"
RETRY_STATUSES = {429, 502, 503, 504}
ETAG_CACHE_ENTRIES = 64  # answers kept for If-None-Match (one per polled URL)
DEFAULT_PAGE_SIZE = 5000  # bars per page when iterating a range (~3.5 days of 1m, ~400 KB of JSON)


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


class NetworkError(UnavailableError):
    """The server could not be reached (DNS, refused or reset connection): there was no HTTP
    answer, so no status. An UnavailableError, as before, for code that catches that."""

    status = None


class ChartTimeoutError(UnavailableError):
    """The server did not answer within the client's timeout (after retries)."""

    status = None


class ServerError(ChartApiError):
    """The server failed (HTTP 500 and other 5xx that are not 502/503/504). Not retried: a
    request that crashed the server once would most likely crash it again."""

    status = 500


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
    cls = _BY_STATUS.get(response.status_code)
    if cls is None:
        cls = ServerError if response.status_code >= 500 else ChartApiError
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


def _from_cache(response: httpx.Response, cached: tuple[str, bytes, float] | None) -> dict:
    """The answer kept for a 304, with its `timing` brought up to date."""
    if cached is None:  # a 304 to a request that sent no If-None-Match: not the chart API's
        raise ChartApiError(
            f"{response.request.method} {response.request.url.path}: HTTP 304 to an unconditional request",
            status=304,
            error="unexpected_304",
        )
    data = json.loads(cached[1])
    timing = data.get("timing") if isinstance(data, dict) else None
    if isinstance(timing, dict) and isinstance(timing.get("timeframe"), int) and timing["timeframe"] > 0:
        # the 304 keeps the data, but the countdown has moved on since the kept answer
        data["timing"] = bar_timing(timing.get("symbol"), timing["timeframe"], time.time() + cached[2])
    return data


def _server_skew(data) -> float:
    """Server clock minus ours, from the answer's timing (0 when it has none)."""
    try:
        return float(data["timing"]["server_time"]) - time.time()
    except (ValueError, KeyError, TypeError):
        return 0.0


def _check_base_url(base_url: str) -> str:
    parts = urlsplit(base_url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(
            f"chart URL {base_url!r} must start with https:// (or http:// for a local stack), "
            f"e.g. https://{base_url.split('://')[-1].lstrip('/') or 'tradowixapi.site'}"
        )
    return base_url.rstrip("/")


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
        # Refused rather than guessed: "host:8765" read as https would fail later and obscurely.
        self.base_url = _check_base_url(base_url)
        self.api_key = api_key if api_key is not None else (os.environ.get(ENV_KEY) or None)
        self.timeout = timeout
        self.max_retries = max_retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.max_retry_wait = max_retry_wait
        # GET URL -> (ETag, answer bytes, server clock skew), most recently used last
        self._etag_cache: OrderedDict[str, tuple[str, bytes, float]] = OrderedDict()
        self._etag_lock = threading.Lock()  # a sync client may be shared by threads

    def __repr__(self) -> str:  # never shows the key
        return f"{type(self).__name__}({self.base_url!r}, api_key={'***' if self.api_key else None})"

    def _headers(self) -> dict[str, str]:
        headers = {"Accept": "application/json", "User-Agent": "tradowix-chart-client/1"}
        if self.api_key:
            headers["X-Api-Key"] = self.api_key
        return headers

    def _conditional(self, request: httpx.Request) -> tuple[str, bytes, float] | None:
        """Adds If-None-Match to a GET whose answer is kept; returns the kept entry."""
        if request.method != "GET":
            return None
        with self._etag_lock:
            cached = self._etag_cache.get(str(request.url))
        if cached is not None:
            request.headers["If-None-Match"] = cached[0]
        return cached

    def _answer(self, response: httpx.Response, cached: tuple[str, bytes, float] | None, keep: bool) -> dict:
        """The JSON of a 2xx or 304 answer; keeps a GET answer that has an ETag for the next poll
        (`keep`: not for pages of a range, which are read once)."""
        if response.status_code == 304:
            return _from_cache(response, cached)
        data = _json_answer(response)
        etag = response.headers.get("etag")
        if keep and response.request.method == "GET" and response.status_code == 200 and etag:
            url = str(response.request.url)
            with self._etag_lock:
                self._etag_cache[url] = (etag, response.content, _server_skew(data))
                self._etag_cache.move_to_end(url)
                while len(self._etag_cache) > ETAG_CACHE_ENTRIES:
                    self._etag_cache.popitem(last=False)
        return data

    def _retry_wait(self, method: str, path: str, attempt: int, failure) -> float:
        """Seconds to wait after failed attempt `attempt` (a transport error or a non-2xx
        answer) before the next; raises the typed error when it is not retried."""
        error: ChartApiError
        if isinstance(failure, httpx.TimeoutException):
            error = ChartTimeoutError(f"{method} {path}: no answer within {self.timeout}s ({failure!r})")
        elif isinstance(failure, httpx.TransportError):
            error = NetworkError(
                f"{method} {path}: cannot reach {self.base_url} ({failure or type(failure).__name__})"
            )
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


# -- forward paging ----------------------------------------------------------------------------


class _Pager:
    """Walks one symbol's range page by page, following the server's `next` links.

    The server's contract: `page_size=N` with `start`/`end` answers the first N bars at or
    after `start`, with `has_more` and `next` (a relative URL, or null on the last page). The
    pager checks every page so that nothing is lost or repeated: bars inside the range, each
    newer than the last one handed out; a page that says `has_more` must move forward. A
    server without paging ignores `page_size` and answers the whole range (no `has_more`):
    that answer is complete, so it is the only page.
    """

    def __init__(
        self, base_url: str, symbol: str, start: int, end: int | None, timeframe: int, page_size: int
    ):
        if isinstance(start, bool) or not isinstance(start, int):
            raise ValueError(f"start must be unix seconds (an int), got {start!r}")
        if end is not None and (isinstance(end, bool) or not isinstance(end, int) or end <= start):
            raise ValueError(f"end must be unix seconds after start, got {end!r}")
        if isinstance(page_size, bool) or not isinstance(page_size, int) or page_size < 1:
            raise ValueError(f"page_size must be a positive int, got {page_size!r}")
        self.origin = urlsplit(base_url)
        self.symbol, self.start, self.end = symbol, start, end
        params = {"symbol": symbol, "timeframe": timeframe, "start": start, "page_size": page_size}
        self.request: tuple[str, dict | None] | None = ("/api/candles", _drop_none({**params, "end": end}))
        self.last_time: int | None = None
        self.pages = 0

    def _follow(self, link) -> tuple[str, None]:
        if not isinstance(link, str) or not link:
            raise ChartApiError(
                f"candles of {self.symbol}: the page says has_more but gives no next link",
                error="bad_page",
            )
        parts = urlsplit(urljoin("/api/candles", link))
        if (parts.scheme or parts.netloc) and (parts.scheme, parts.netloc) != (
            self.origin.scheme,
            self.origin.netloc,
        ):
            # The key goes with every request: never to another host.
            raise ChartApiError(
                f"candles of {self.symbol}: refusing to follow a next link to another host ({parts.netloc})",
                error="bad_page",
            )
        path, prefix = parts.path, self.origin.path.rstrip("/")
        if prefix and path.startswith(prefix + "/"):  # a stage path in the base URL, e.g. /prod
            path = path[len(prefix) :]
        return urlunsplit(("", "", path, parts.query, "")), None

    def take(self, page: dict) -> list[dict]:
        """The new bars of `page` (oldest first); sets the next request (None when done)."""
        self.pages += 1
        candles = page.get("candles")
        if not isinstance(candles, list):
            raise ChartApiError(f"candles of {self.symbol}: the page has no candles list", error="bad_page")
        fresh = []
        for bar in candles:
            t = bar.get("time") if isinstance(bar, dict) else None
            if not isinstance(t, int) or t < self.start or (self.end is not None and t >= self.end):
                continue
            if self.last_time is not None and t <= self.last_time:
                continue  # already handed out (a page boundary repeated by the server)
            fresh.append(bar)
            self.last_time = t
        has_more = page.get("has_more")
        if has_more is True:
            if not fresh:
                raise ChartApiError(
                    f"candles of {self.symbol}: a page with has_more brought no new bar "
                    f"(after {self.last_time}); stopping rather than looping",
                    error="bad_page",
                )
            self.request = self._follow(page.get("next"))
        else:
            self.request = None
        return fresh


def _bars_of_page(pager: _Pager, page: dict, include_forming: bool) -> list[dict]:
    bars = pager.take(page)
    if bars and pager.request is None and page.get("last_closed") is False and not include_forming:
        # The newest bar of the range is still forming: its close is not final.
        return bars[:-1]
    return bars


def _symbol_list(symbols: str | Iterable[str]) -> list[str]:
    names = [symbols] if isinstance(symbols, str) else list(dict.fromkeys(symbols))
    if not names or not all(isinstance(s, str) and s for s in names):
        raise ValueError("symbols must be a symbol or a list of symbols")
    return names


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

    def _request(self, method: str, path: str, *, params=None, json_body=None, keep=True) -> dict:
        for attempt in itertools.count(1):
            request = self._http.build_request(
                method, path, params=params, json=json_body, headers=self._headers()
            )
            cached = self._conditional(request) if keep else None
            try:
                response = self._http.send(request)
            except httpx.TransportError as exc:
                time.sleep(self._retry_wait(method, path, attempt, exc))
                continue
            if response.is_success or response.status_code == 304:
                return self._answer(response, cached, keep)
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

    def iter_candle_pages(
        self,
        symbols: str | Iterable[str],
        start: int,
        end: int | None = None,
        *,
        timeframe: int = 60,
        page_size: int = DEFAULT_PAGE_SIZE,
    ) -> Iterator[dict]:
        """Every /api/candles page of [start, end) (unix seconds; end None = up to now) of each
        symbol in turn, following the server's `next` links. Each page is the server's answer
        (`symbol`, `candles`, `has_more`, `available_from`, `available_to`, ...)."""
        for symbol in _symbol_list(symbols):
            pager = _Pager(self.base_url, symbol, start, end, timeframe, page_size)
            while pager.request is not None:
                path, params = pager.request
                page = self._request("GET", path, params=params, keep=False)
                yield page
                pager.take(page)

    def iter_candles(
        self,
        symbols: str | Iterable[str],
        start: int,
        end: int | None = None,
        *,
        timeframe: int = 60,
        page_size: int = DEFAULT_PAGE_SIZE,
        include_forming: bool = False,
    ) -> Iterator[tuple[str, dict]]:
        """`(symbol, bar)` for every bar of [start, end) of each symbol, oldest first, across as
        many pages as it takes: a range of any length, nothing lost or repeated. A bar still
        forming at the end of the range is left out unless `include_forming`."""
        for symbol in _symbol_list(symbols):
            pager = _Pager(self.base_url, symbol, start, end, timeframe, page_size)
            while pager.request is not None:
                path, params = pager.request
                for bar in _bars_of_page(
                    pager, self._request("GET", path, params=params, keep=False), include_forming
                ):
                    yield symbol, bar

    def live_status(self) -> dict:
        return self._request("GET", "/api/live/status")

    def docs(self) -> dict:
        return self._request("GET", "/api/docs")

    # Live (the stream itself is in tradowix_bot.client.live_client) ---------------------------------

    def ws_url(self) -> str:
        """The WebSocket URL to connect to, with the key: from /api/live/status, else derived."""
        from tradowix_bot.client import live_client

        return live_client.ws_url_sync(self)

    def derived_ws_url(self) -> str:
        """The WebSocket URL guessed from the base URL, when /api/live/status gives none."""
        from tradowix_bot.client import live_client

        return live_client.derived_ws_url(self.base_url)

    async def subscribe_live(self, on_msg, symbol: str | None = None, timeframe: int = 60, **kw) -> None:
        """Async live stream (see AsyncChartApiClient.subscribe_live)."""
        from tradowix_bot.client import live_client

        await live_client.subscribe_live_from_sync_client(self, on_msg, symbol, timeframe, **kw)

    def subscribe_live_sync(self, on_msg, symbol: str | None = None, timeframe: int = 60, **kw) -> None:
        """Blocks, handing every live message (a dict) to `on_msg(msg)`, until `stop` is set,
        `max_messages` were delivered, on_msg raises, or the key is refused."""
        from tradowix_bot.client import live_client

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

    async def _request(self, method: str, path: str, *, params=None, json_body=None, keep=True) -> dict:
        for attempt in itertools.count(1):
            request = self._http.build_request(
                method, path, params=params, json=json_body, headers=self._headers()
            )
            cached = self._conditional(request) if keep else None
            try:
                response = await self._http.send(request)
            except httpx.TransportError as exc:
                await asyncio.sleep(self._retry_wait(method, path, attempt, exc))
                continue
            if response.is_success or response.status_code == 304:
                return self._answer(response, cached, keep)
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

    async def iter_candle_pages(
        self,
        symbols: str | Iterable[str],
        start: int,
        end: int | None = None,
        *,
        timeframe: int = 60,
        page_size: int = DEFAULT_PAGE_SIZE,
    ) -> AsyncIterator[dict]:
        """`async for page in client.iter_candle_pages(...)`: see ChartApiClient.iter_candle_pages."""
        for symbol in _symbol_list(symbols):
            pager = _Pager(self.base_url, symbol, start, end, timeframe, page_size)
            while pager.request is not None:
                path, params = pager.request
                page = await self._request("GET", path, params=params, keep=False)
                yield page
                pager.take(page)

    async def iter_candles(
        self,
        symbols: str | Iterable[str],
        start: int,
        end: int | None = None,
        *,
        timeframe: int = 60,
        page_size: int = DEFAULT_PAGE_SIZE,
        include_forming: bool = False,
    ) -> AsyncIterator[tuple[str, dict]]:
        """`async for symbol, bar in client.iter_candles(...)`: see ChartApiClient.iter_candles."""
        for symbol in _symbol_list(symbols):
            pager = _Pager(self.base_url, symbol, start, end, timeframe, page_size)
            while pager.request is not None:
                path, params = pager.request
                page = await self._request("GET", path, params=params, keep=False)
                for bar in _bars_of_page(pager, page, include_forming):
                    yield symbol, bar

    async def live_status(self) -> dict:
        return await self._request("GET", "/api/live/status")

    async def docs(self) -> dict:
        return await self._request("GET", "/api/docs")

    # Live (the stream itself is in tradowix_bot.client.live_client) ---------------------------------

    async def ws_url(self) -> str:
        from tradowix_bot.client import live_client

        return await live_client.ws_url_async(self)

    def derived_ws_url(self) -> str:
        from tradowix_bot.client import live_client

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
        tradowix_bot.client.live_client).

        `symbols` subscribes several symbols, `timeframes` several timeframes of each, all on
        one connection (messages carry `symbol` and `timeframe`). `on_state(state)` hears
        connecting / live / reconnecting / failed.
        """
        from tradowix_bot.client import live_client

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
    # The live names moved to tradowix_bot.client.live_client; imported on first use so that module
    # can import this one (its errors) without a cycle at import time.
    if name in _LIVE_NAMES:
        from tradowix_bot.client import live_client

        return getattr(live_client, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


_LIVE_NAMES = {"LiveOptions"}
