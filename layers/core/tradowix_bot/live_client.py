"""Partner SDK, live part: the WebSocket stream of a Tradowix chart deployment.

Partner code reaches it through `tradowix_bot.chart_client` (unchanged)::

    client = ChartApiClient("https://example-host", "twk_KEY")
    client.subscribe_live_sync(on_msg, symbol="BTCUSD-OTC", timeframe=60)

`subscribe_live` connects to the `ws_url` that `/api/live/status` returns, subscribes,
and hands every message to `on_msg`. It reconnects and resubscribes after any drop
(backoff with jitter), renews the connection before API Gateway's 2-hour limit without a
gap (a bar update may arrive twice around a renewal: updates are snapshots of the bar, so
that is harmless), and reports a refused key as `AuthenticationError` whether the server
refused the handshake with 401 or closed with 4401.

Like chart_client, this module needs only httpx and websockets.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
import random
import threading
import time
from collections.abc import Callable
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import websockets
from websockets.exceptions import ConnectionClosed, InvalidStatus

from tradowix_bot.chart_client import AuthenticationError, NotFoundError, UnavailableError, _redact_url

__all__ = ["LiveOptions", "subscribe_live", "parse_subscriptions"]

logger = logging.getLogger("tradowix_bot.chart_client")

WS_AUTH_CLOSE_CODE = 4401  # the original server's "API key required or invalid"
WS_REFUSED_CLOSE_CODES = {4401, 4403}  # our local gateway closes a refused $connect (401/403) so


# -- the URL ---------------------------------------------------------------------------------


def ws_url_from_status(status: dict | None) -> str | None:
    url = status.get("ws_url") if isinstance(status, dict) else None
    return url if isinstance(url, str) and url.startswith(("ws://", "wss://")) else None


def derived_ws_url(base_url: str) -> str:
    """The WebSocket URL guessed from the base URL, when /api/live/status gives none.

    Same host with ws/wss; the original local server's port 8765 maps to 8766.
    """
    parts = urlsplit(base_url)
    scheme = "wss" if parts.scheme == "https" else "ws"
    netloc = parts.netloc
    if parts.port == 8765:
        netloc = netloc.rsplit(":", 1)[0] + ":8766"
    return urlunsplit((scheme, netloc, parts.path if parts.port != 8765 else "", "", ""))


def with_key(ws_url: str, api_key: str | None) -> str:
    if not api_key:
        return ws_url
    parts = urlsplit(ws_url)
    query = dict(parse_qsl(parts.query))
    query.setdefault("api_key", api_key)
    return urlunsplit(parts._replace(query=urlencode(query)))


def ws_url_sync(client) -> str:
    """The WebSocket URL with the key: from /api/live/status, else derived (blocking client)."""
    try:
        url = ws_url_from_status(client.live_status())
    except (NotFoundError, UnavailableError) as exc:
        logger.info("no ws_url from /api/live/status (%s); deriving it", exc.message)
        url = None
    return with_key(url or derived_ws_url(client.base_url), client.api_key)


async def ws_url_async(client) -> str:
    """ws_url_sync for the asyncio client."""
    try:
        url = ws_url_from_status(await client.live_status())
    except (NotFoundError, UnavailableError) as exc:
        logger.info("no ws_url from /api/live/status (%s); deriving it", exc.message)
        url = None
    return with_key(url or derived_ws_url(client.base_url), client.api_key)


# -- entry points used by the clients ----------------------------------------------------------


async def subscribe_live_from_sync_client(client, on_msg, symbol, timeframe, **kw) -> None:
    """ChartApiClient.subscribe_live: its HTTP calls block, so they run in a thread."""
    url = await asyncio.to_thread(client.ws_url)
    await subscribe_live(
        client, url, on_msg, parse_subscriptions(symbol, timeframe, kw.pop("symbols", None)), **kw
    )


def run_blocking(coro) -> None:
    """Run a live coroutine to the end from blocking code, even inside a running event loop."""
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


# -- the stream ------------------------------------------------------------------------------


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


def parse_subscriptions(symbol, timeframe, symbols) -> list[tuple[str, int]]:
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


async def subscribe_live(client, url, on_msg, subscriptions, *, stop=None, max_messages=None, options=None):
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
