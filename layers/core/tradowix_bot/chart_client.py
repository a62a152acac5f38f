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
`BadRequestError`, `RateLimitedError`, `UnavailableError` (with `NetworkError` and
`ChartTimeoutError` for failures without an HTTP answer), `ServerError` (500), all
`ChartApiError`) and carry the server's `{"error", "message"}`. Requests are retried with
exponential backoff and jitter on 429/502/503/504, timeouts and connection failures,
honouring `Retry-After`.

Repeated polls of the same GET send `If-None-Match` with the answer's ETag; a 304 gives the
answer kept from before (its `timing` brought up to date), so an unchanged answer costs the
server and the network almost nothing. Answers are gzip-compressed when the server offers it.

Live: `subscribe_live` connects to the `ws_url` that `/api/live/status` returns, subscribes,
and hands every message to `on_msg`. It reconnects and resubscribes after any drop
(backoff with jitter), renews the connection before API Gateway's 2-hour limit without a
gap (a bar update may arrive twice around a renewal: updates are snapshots of the bar, so
that is harmless), and reports a refused key as `AuthenticationError` whether the server
refused the handshake with 401 or closed with 4401.
"""

from __future__ import annotations

import asyncio
import email.utils
import inspect
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
from typing import Any
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

import httpx
import websockets
from websockets.exceptions import ConnectionClosed, InvalidStatus

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
WS_AUTH_CLOSE_CODE = 4401  # the original server's "API key required or invalid"
WS_REFUSED_CLOSE_CODES = {4401, 4403}  # our local gateway closes a refused $connect (401/403) so
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
        data["timing"] = _timing_at(timing["symbol"], timing["timeframe"], time.time() + cached[2])
    return data


def _timing_at(symbol: str, timeframe: int, now: float) -> dict:
    """The server's timing object (tradowix_bot.timing.bar_timing) for `now`: the 304 keeps the
    data, but the countdown has moved on since the kept answer."""
    bar_open = int(now // timeframe) * timeframe
    elapsed = now - bar_open
    return {
        "symbol": symbol,
        "timeframe": timeframe,
        "server_time": round(now, 3),
        "bar_open": bar_open,
        "bar_close": bar_open + timeframe,
        "elapsed": round(elapsed, 3),
        "seconds_left": round(timeframe - elapsed, 3),
        "progress": round(elapsed / timeframe, 4),
    }


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

    def derived_ws_url(self) -> str:
        """The WebSocket URL guessed from the base URL, when /api/live/status gives none.

        Same host with ws/wss; the original local server's port 8765 maps to 8766.
        """
        parts = urlsplit(self.base_url)
        scheme = "wss" if parts.scheme == "https" else "ws"
        netloc = parts.netloc
        if parts.port == 8765:
            netloc = netloc.rsplit(":", 1)[0] + ":8766"
        return urlunsplit((scheme, netloc, parts.path if parts.port != 8765 else "", "", ""))

    def _with_key(self, ws_url: str) -> str:
        if not self.api_key:
            return ws_url
        parts = urlsplit(ws_url)
        query = dict(parse_qsl(parts.query))
        query.setdefault("api_key", self.api_key)
        return urlunsplit(parts._replace(query=urlencode(query)))


def _ws_url_from_status(status: dict | None) -> str | None:
    url = status.get("ws_url") if isinstance(status, dict) else None
    return url if isinstance(url, str) and url.startswith(("ws://", "wss://")) else None


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

    # Live ----------------------------------------------------------------------------------

    def ws_url(self) -> str:
        """The WebSocket URL to connect to, with the key: from /api/live/status, else derived."""
        try:
            url = _ws_url_from_status(self.live_status())
        except (NotFoundError, UnavailableError) as exc:
            logger.info("no ws_url from /api/live/status (%s); deriving it", exc.message)
            url = None
        return self._with_key(url or self.derived_ws_url())

    async def subscribe_live(self, on_msg, symbol: str | None = None, timeframe: int = 60, **kw) -> None:
        """Async live stream (see AsyncChartApiClient.subscribe_live)."""
        url = await asyncio.to_thread(self.ws_url)
        await _live(self, url, on_msg, _subscriptions(symbol, timeframe, kw.pop("symbols", None)), **kw)

    def subscribe_live_sync(self, on_msg, symbol: str | None = None, timeframe: int = 60, **kw) -> None:
        """Blocks, handing every live message (a dict) to `on_msg(msg)`, until `stop` is set,
        `max_messages` were delivered, on_msg raises, or the key is refused."""
        coro = self.subscribe_live(on_msg, symbol=symbol, timeframe=timeframe, **kw)
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return asyncio.run(coro)
        # Called from inside an event loop (e.g. a notebook): run in a thread of its own.
        outcome: dict = {}

        def runner():
            try:
                asyncio.run(coro)
            except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
                outcome["error"] = exc

        thread = threading.Thread(target=runner, name="tradowix-live", daemon=True)
        thread.start()
        thread.join()
        if "error" in outcome:
            raise outcome["error"]


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

    async def ws_url(self) -> str:
        try:
            url = _ws_url_from_status(await self.live_status())
        except (NotFoundError, UnavailableError) as exc:
            logger.info("no ws_url from /api/live/status (%s); deriving it", exc.message)
            url = None
        return self._with_key(url or self.derived_ws_url())

    async def subscribe_live(
        self,
        on_msg: Callable[[dict], Any] | Callable[[dict], Awaitable[Any]],
        symbol: str | None = None,
        timeframe: int = 60,
        *,
        symbols: Iterable[str] | None = None,
        stop: asyncio.Event | threading.Event | None = None,
        max_messages: int | None = None,
        options: LiveOptions | None = None,
    ) -> None:
        """Stream live messages to `on_msg` (sync or async) until `stop` is set, `max_messages`
        were delivered, on_msg raises, or the key is refused (AuthenticationError).

        `symbols` subscribes several symbols (same timeframe) on one connection.
        """
        url = await self.ws_url()
        await _live(
            self,
            url,
            on_msg,
            _subscriptions(symbol, timeframe, symbols),
            stop=stop,
            max_messages=max_messages,
            options=options,
        )


# -- live ------------------------------------------------------------------------------------


class LiveOptions:
    """Tuning of the live connection; the defaults fit API Gateway's limits."""

    def __init__(
        self,
        *,
        renew_after: float = 110 * 60,  # API Gateway closes connections at 2 hours
        keepalive: float = 60.0,  # an application ping when idle this long (idle timeout is 10 min)
        dead_after: float = 180.0,  # nothing at all received for this long: reconnect
        backoff: float = 0.5,
        max_backoff: float = 30.0,
        stable_after: float = 30.0,  # a connection that lived this long resets the backoff
        switch_timeout: float = 15.0,  # renewal: wait this long for the new connection's history
    ):
        self.renew_after = renew_after
        self.keepalive = keepalive
        self.dead_after = dead_after
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.stable_after = stable_after
        self.switch_timeout = switch_timeout


def _subscriptions(symbol, timeframe, symbols) -> list[tuple[str, int]]:
    names = list(symbols or []) + ([symbol] if symbol else [])
    if not names:
        raise ValueError("subscribe_live needs symbol=... (or symbols=[...])")
    if isinstance(timeframe, bool) or not isinstance(timeframe, int) or timeframe < 60 or timeframe % 60:
        raise ValueError(
            f"timeframe must be whole seconds, at least 60 and a multiple of 60 (got {timeframe!r})"
        )
    return [(s, timeframe) for s in dict.fromkeys(names)]


def _is_auth_refusal(exc: BaseException) -> bool:
    if isinstance(exc, InvalidStatus):
        return exc.response.status_code in (401, 403)
    if isinstance(exc, ConnectionClosed):
        rcvd = exc.rcvd
        return rcvd is not None and rcvd.code in WS_REFUSED_CLOSE_CODES
    return False


def _auth_error(exc: BaseException) -> AuthenticationError:
    if isinstance(exc, InvalidStatus):
        status = exc.response.status_code
        body = exc.response.body.decode("utf-8", "replace") if exc.response.body else ""
        message = f"live connection refused with HTTP {status}: API key required or invalid"
        code = None
        try:
            doc = json.loads(body)
            if isinstance(doc, dict):
                message = doc.get("message") or message
                code = doc.get("error")
        except ValueError:
            pass
        return AuthenticationError(message, error=code or "invalid_key", status=401)
    rcvd = exc.rcvd if isinstance(exc, ConnectionClosed) else None
    code, reason = (rcvd.code, rcvd.reason) if rcvd else (WS_AUTH_CLOSE_CODE, "")
    return AuthenticationError(
        f"live connection closed with code {code}: {reason or 'API key required or invalid'}",
        error="invalid_key",
        status=401,
    )


async def _live(client: _Base, url, on_msg, subscriptions, *, stop=None, max_messages=None, options=None):
    opts = options or LiveOptions()
    delivered = 0
    loop_stop = asyncio.Event()

    def stopped() -> bool:
        return loop_stop.is_set() or (stop is not None and stop.is_set())

    async def deliver(msg: dict) -> None:
        nonlocal delivered
        result = on_msg(msg)
        if inspect.isawaitable(result):
            await result
        delivered += 1
        if max_messages is not None and delivered >= max_messages:
            loop_stop.set()

    async def open_connection():
        headers = {"X-Api-Key": client.api_key} if client.api_key else None
        ws = await websockets.connect(
            url,
            additional_headers=headers,
            open_timeout=client.timeout,
            ping_interval=None,  # API Gateway: application pings instead (see keepalive)
            max_size=2**20,
            user_agent_header="tradowix-chart-client/1",
        )
        for symbol, timeframe in subscriptions:
            await ws.send(json.dumps({"type": "subscribe", "symbol": symbol, "timeframe": timeframe}))
        return ws

    async def recv(ws, timeout: float) -> dict | None:
        """The next JSON object from ws, None on timeout; non-objects are skipped."""
        try:
            frame = await asyncio.wait_for(ws.recv(), timeout)
        except TimeoutError:
            return None
        try:
            msg = json.loads(frame)
        except (TypeError, ValueError):
            logger.warning("ignoring a live frame that is not JSON: %.80r", frame)
            return {}
        return msg if isinstance(msg, dict) else {}

    async def renew(old):
        """Open a new connection and switch to it once it delivers history; None if it fails."""
        try:
            new = await open_connection()
        except Exception as exc:  # noqa: BLE001 - the old connection keeps serving
            if _is_auth_refusal(exc):
                raise _auth_error(exc) from None
            logger.info("live renewal failed (%s); keeping the current connection", _redact_url(str(exc)))
            return None
        waiting = {s for s, _ in subscriptions}
        deadline = time.monotonic() + opts.switch_timeout
        while waiting and time.monotonic() < deadline:
            # The old connection buffers its messages meanwhile; drained below.
            msg = await recv(new, max(0.01, deadline - time.monotonic()))
            if msg and msg.get("type") in ("history", "error"):
                waiting.discard(msg.get("symbol"))
        while True:  # drain what the old connection already received, then close it
            try:
                msg = await recv(old, 0.01)
            except ConnectionClosed:
                break
            if msg is None:
                break
            if msg:
                await deliver(msg)
        await old.close()
        logger.info("live connection renewed before the 2-hour limit")
        return new

    attempt = 0
    ws = None
    try:
        while not stopped():
            if ws is None:
                try:
                    ws = await open_connection()
                except Exception as exc:  # noqa: BLE001 - classified below
                    if _is_auth_refusal(exc):
                        raise _auth_error(exc) from None
                    attempt += 1
                    delay = random.uniform(0, min(opts.max_backoff, opts.backoff * 2 ** (attempt - 1)))
                    logger.warning(
                        "live connection to %s failed (%s); retrying in %.1fs",
                        _redact_url(url),
                        _redact_url(str(exc)),
                        delay,
                    )
                    await _sleep_unless(delay, stopped)
                    continue
                opened = last_seen = time.monotonic()
                last_ping = 0.0
                logger.info("live connected to %s", _redact_url(url))
            now = time.monotonic()
            if now - opened >= opts.renew_after:
                new = await renew(ws)
                if new is not None:
                    ws, opened, last_seen = new, time.monotonic(), time.monotonic()
                else:
                    opened += 30  # try the renewal again in 30 s
                continue
            timeout = min(
                opts.keepalive,
                max(0.0, opened + opts.renew_after - now),
                1.0 if stop is not None else opts.keepalive,  # poll an external stop flag
            )
            try:
                msg = await recv(ws, timeout)
                if msg is None:
                    if time.monotonic() - last_seen >= opts.dead_after:
                        raise ConnectionError(f"nothing received for {opts.dead_after:.0f}s")
                    quiet = time.monotonic() - max(last_seen, last_ping)
                    if quiet >= opts.keepalive:
                        await ws.send(json.dumps({"type": "ping"}))
                        last_ping = time.monotonic()
                    continue
            except (ConnectionClosed, ConnectionError, OSError) as exc:
                if _is_auth_refusal(exc):
                    raise _auth_error(exc) from None
                lived = time.monotonic() - opened
                attempt = 1 if lived >= opts.stable_after else attempt + 1
                delay = random.uniform(0, min(opts.max_backoff, opts.backoff * 2 ** (attempt - 1)))
                logger.warning(
                    "live connection lost (%s); reconnecting in %.1fs", _redact_url(str(exc)), delay
                )
                ws = None
                await _sleep_unless(delay, stopped)
                continue
            last_seen = time.monotonic()
            if msg:
                await deliver(msg)
    finally:
        if ws is not None:
            await ws.close()


async def _sleep_unless(seconds: float, stopped: Callable[[], bool]) -> None:
    end = time.monotonic() + seconds
    while not stopped() and time.monotonic() < end:
        await asyncio.sleep(min(0.2, max(0.0, end - time.monotonic())))
