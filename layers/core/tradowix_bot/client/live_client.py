"""Partner SDK, live part: the WebSocket stream of a Tradowix chart deployment.

Partner code reaches it through `ChartApiClient` (`tradowix_bot.client`)::

    client = ChartApiClient("https://example-host", "twk_KEY")
    client.subscribe_live_sync(on_msg, symbol="BTCUSD-OTC", timeframe=60)

`subscribe_live` connects to the `ws_url` that `/api/live/status` returns, subscribes (one
symbol, several, or several timeframes of one symbol on one connection), and hands every
message to `on_msg`. What a bot can rely on:

- **Closed bars once, in order.** Each subscription's `bar` with `"closed": true` reaches
  `on_msg` once per bar, in time order, and no update older than the last closed bar does.
  After a reconnect the new `history` is not passed on: the closed bars missed meanwhile are
  (as `bar` messages with `"closed": true, "missed": true`, from that history or, when the
  outage was longer than it, from `/api/candles`), then the current bar. `LiveOptions(
  fill_missed=False)` passes every message through as received instead.
- **A dead connection is noticed.** Idle for `keepalive` seconds, the client sends a `ping`;
  nothing back within `pong_timeout` seconds means the connection is dead: it reconnects.
  Reconnects back off with jitter, capped at `max_backoff` (8 s) while the server answers,
  `max_backoff_unreachable` (30 s) while it does not. Connections are renewed before API
  Gateway's 2-hour limit without a gap.
- **Errors are raised, typed.** A refused key is `AuthenticationError` (status 401; its `error`
  is the server's code, e.g. `key_disabled`) whether the handshake was refused with 401 or the
  socket closed with 4401; a 403 handshake (or 4403) is `SymbolForbiddenError`; when no
  subscription of the stream can be served, the first one's error is raised
  (`symbol_forbidden` → `SymbolForbiddenError`, `no_data` → `NotFoundError`, a bad symbol or
  timeframe → `BadRequestError`). 5xx/429 handshakes and 1008 closes are retried
  `max_refusals` times in a row, then raised.
- `on_state(state)` (sync or async) hears `connecting`, `live`, `reconnecting`, `failed`.

Like chart_client, this module needs only httpx and websockets.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import logging
import random
import threading
import time
from collections.abc import Callable
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import websockets
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from tradowix_bot.client import chart_client
from tradowix_bot.client.chart_client import (
    AuthenticationError,
    BadRequestError,
    ChartApiError,
    NotFoundError,
    SymbolForbiddenError,
    UnavailableError,
    _redact_url,
)

__all__ = ["LiveOptions", "subscribe_live", "parse_subscriptions"]

logger = logging.getLogger("tradowix_bot.chart_client")

WS_AUTH_CLOSE_CODE = 4401  # the original server's "API key required or invalid"
WS_FORBIDDEN_CLOSE_CODE = 4403  # our local gateway closes a $connect refused with 403 so
POLICY_VIOLATION = 1008  # API Gateway's close for a connection it will not serve
AUTH_ERROR_CODES = {"key_disabled", "invalid_key", "missing_key", "invalid_session"}
# Answers to a subscribe that end that subscription, and the error raised when none is left.
SUBSCRIBE_ERRORS: dict[str, type[ChartApiError]] = {
    "symbol_forbidden": SymbolForbiddenError,
    "no_data": NotFoundError,
}
TRANSIENT_ERRORS = {"rate_limited", "unavailable", "internal_error"}  # subscribe again later


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
    subscriptions = parse_subscriptions(
        symbol, timeframe, kw.pop("symbols", None), kw.pop("timeframes", None)
    )
    url = await asyncio.to_thread(client.ws_url)
    await subscribe_live(client, url, on_msg, subscriptions, **kw)


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
        keepalive: float = 20.0,  # idle this long: send a ping (API Gateway's idle timeout is 10 min)
        pong_timeout: float = 20.0,  # nothing back this long after a ping: the connection is dead
        dead_after: float | None = None,  # optional: nothing at all received this long: dead
        backoff: float = 0.5,
        max_backoff: float = 8.0,  # reconnect delay cap while the server answers handshakes
        max_backoff_unreachable: float = 30.0,  # ... and while it does not answer at all
        stable_after: float = 30.0,  # a connection that lived this long resets the backoff
        switch_timeout: float = 15.0,  # renewal: wait this long for the new connection's history
        max_refusals: int = 5,  # 5xx/429 handshakes or 1008 closes in a row before raising
        fill_missed: bool = True,  # after a reconnect: missed closed bars instead of a new history
    ):
        self.renew_after = renew_after
        self.keepalive = keepalive
        self.pong_timeout = pong_timeout
        self.dead_after = dead_after
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.max_backoff_unreachable = max_backoff_unreachable
        self.stable_after = stable_after
        self.switch_timeout = switch_timeout
        self.max_refusals = max_refusals
        self.fill_missed = fill_missed


def parse_subscriptions(symbol, timeframe, symbols=None, timeframes=None) -> list[tuple[str, int]]:
    """(symbol, timeframe) pairs: every symbol at every timeframe, in the order given."""
    names = list(symbols or []) + ([symbol] if symbol else [])
    if not names:
        raise ValueError("subscribe_live needs symbol=... (or symbols=[...])")
    if isinstance(symbols, str):
        raise ValueError("symbols must be a list of names, e.g. symbols=['BTCUSD-OTC', 'EURUSD-OTC']")
    frames = list(timeframes) if timeframes is not None else [timeframe]
    if not frames:
        raise ValueError("timeframes must name at least one timeframe, e.g. timeframes=[60, 300]")
    for tf in frames:
        # The server's rule (resample.validate_timeframe), copied: the partner client imports no
        # server code, so it installs and runs with httpx and websockets alone.
        if isinstance(tf, bool) or not isinstance(tf, int) or tf < 60 or tf % 60 or tf > 7 * 86400:
            raise ValueError(
                f"timeframe must be whole seconds, at least 60, a multiple of 60 and at most 604800 "
                f"(1 week) (got {tf!r})"
            )
    return [(s, tf) for s in dict.fromkeys(names) for tf in dict.fromkeys(frames)]


def _error_for(
    status: int, code: str | None, message: str, retry_after: float | None = None
) -> ChartApiError:
    """The typed error of an HTTP status, as the HTTP side maps it (chart_client._BY_STATUS)."""
    error = chart_client._BY_STATUS.get(status, ChartApiError)(message, status=status, error=code)
    if retry_after is not None:
        error.retry_after = retry_after
    return error


def _handshake_error(exc: InvalidStatus, remembered: str | None) -> ChartApiError:
    """The typed error of a handshake the server answered with a non-101 status."""
    response = exc.response
    status = response.status_code
    body = response.body.decode("utf-8", "replace") if response.body else ""
    code = message = None
    try:
        doc = json.loads(body)
        if isinstance(doc, dict):
            code = doc.get("error") if isinstance(doc.get("error"), str) else None
            message = doc.get("message") if isinstance(doc.get("message"), str) else None
    except ValueError:
        pass
    if status == 401:
        return AuthenticationError(
            message or "live connection refused with HTTP 401: API key required or invalid",
            status=401,
            error=code or remembered or "invalid_key",
        )
    retry = chart_client._retry_after(response.headers.get("Retry-After"))
    return _error_for(
        status, code, message or f"live connection refused with HTTP {status} {response.reason_phrase}", retry
    )


def _close_error(exc: ConnectionClosed, remembered: str | None) -> ChartApiError | None:
    """The typed error a close code stands for (None: an ordinary drop, reconnect)."""
    rcvd = exc.rcvd
    if rcvd is None:
        return None
    reason = rcvd.reason if rcvd.reason and rcvd.reason.replace("_", "").isalpha() else None
    if rcvd.code == WS_AUTH_CLOSE_CODE:
        return AuthenticationError(
            f"live connection closed with code 4401: {rcvd.reason or 'API key required or invalid'}",
            status=401,
            error=reason or remembered or "invalid_key",
        )
    if rcvd.code == WS_FORBIDDEN_CLOSE_CODE:
        return SymbolForbiddenError(
            f"live connection closed with code 4403: {rcvd.reason or 'forbidden'}",
            error=reason or "forbidden",
        )
    if rcvd.code == POLICY_VIOLATION:
        return ChartApiError(
            f"live connection closed with code 1008 (policy violation): {rcvd.reason or 'refused by the server'}",
            error="policy_violation",
        )
    return None


class _Subscription:
    """One (symbol, timeframe) of the stream and what its bot was handed."""

    def __init__(self, symbol: str, timeframe: int):
        self.symbol, self.timeframe = symbol, timeframe
        self.failed: ChartApiError | None = None
        self.had_history = False
        self.last_closed: int | None = None  # newest bar handed over as closed
        self.newest: int | None = None  # newest bar handed over at all
        self.checked_until: float = float("-inf")  # holes before this bar were looked up already

    @property
    def key(self) -> tuple[str, int]:
        return self.symbol, self.timeframe


class _Stream:
    def __init__(self, client, url, on_msg, subscriptions, *, stop, max_messages, options, on_state):
        self.client = client
        self.url = url
        self.on_msg = on_msg
        self.on_state = on_state
        self.subs = {key: _Subscription(*key) for key in subscriptions}
        self.stop = stop
        self.max_messages = max_messages
        self.opts = options or LiveOptions()
        self.delivered = 0
        self.done = asyncio.Event()
        self.state: str | None = None
        self.auth_code: str | None = None  # the last key error the server sent (e.g. key_disabled)
        self.refusals = 0
        self.attempt = 0
        self.first_connection = True
        self.timers: set[asyncio.Task] = set()

    # -- helpers -------------------------------------------------------------------------------
    def stopped(self) -> bool:
        return self.done.is_set() or (self.stop is not None and self.stop.is_set())

    async def set_state(self, state: str) -> None:
        if state != self.state:
            self.state = state
            if self.on_state is not None:
                result = self.on_state(state)
                if inspect.isawaitable(result):
                    await result

    async def deliver(self, msg: dict) -> None:
        if self.stopped():
            return
        result = self.on_msg(msg)
        if inspect.isawaitable(result):
            await result
        self.delivered += 1
        if self.max_messages is not None and self.delivered >= self.max_messages:
            self.done.set()

    async def fail(self, error: ChartApiError):
        await self.set_state("failed")
        raise error

    def delay(self, answered: bool) -> float:
        cap = self.opts.max_backoff if answered else self.opts.max_backoff_unreachable
        return random.uniform(0, min(cap, self.opts.backoff * 2 ** (self.attempt - 1)))

    # -- connecting ----------------------------------------------------------------------------
    async def open(self):
        headers = {"X-Api-Key": self.client.api_key} if self.client.api_key else None
        ws = await websockets.connect(
            self.url,
            additional_headers=headers,
            open_timeout=self.client.timeout,
            ping_interval=None,  # API Gateway: application pings instead (see keepalive)
            max_size=2**20,
            user_agent_header="tradowix-chart-client/1",
        )
        for sub in self.subs.values():
            if sub.failed is None:
                await self.send_subscribe(ws, sub)
        return ws

    async def send_subscribe(self, ws, sub: _Subscription) -> None:
        await ws.send(json.dumps({"type": "subscribe", "symbol": sub.symbol, "timeframe": sub.timeframe}))

    async def connect(self):
        """A new connection, or None after a failed attempt (already waited); raises what is fatal."""
        try:
            return await self.open()
        except InvalidStatus as exc:
            error = _handshake_error(exc, self.auth_code)
            status = exc.response.status_code
            if status == 429 or status >= 500:
                await self.refused(error)
                return None
            await self.fail(error)
        except ConnectionClosed as exc:  # accepted, then closed at once (e.g. 4401 for a bad key)
            await self.dropped(None, exc, 0.0)
            return None
        except (InvalidHandshake, OSError, TimeoutError) as exc:
            self.attempt += 1
            delay = self.delay(answered=isinstance(exc, InvalidHandshake))
            logger.warning(
                "live connection to %s failed (%s); retrying in %.1fs",
                _redact_url(self.url),
                _redact_url(str(exc) or type(exc).__name__),
                delay,
            )
            await self.set_state("reconnecting" if not self.first_connection else "connecting")
            await _sleep_unless(delay, self.stopped)
            return None

    async def refused(self, error: ChartApiError) -> None:
        """The server answered but would not serve: wait and retry, up to max_refusals in a row."""
        self.refusals += 1
        if self.refusals >= self.opts.max_refusals:
            await self.fail(error)
        self.attempt += 1
        wait = getattr(error, "retry_after", None)
        delay = wait if wait is not None else self.delay(answered=True)
        logger.warning(
            "live connection refused (%s); %d of %d, retrying in %.1fs",
            error.message,
            self.refusals,
            self.opts.max_refusals,
            delay,
        )
        await self.set_state("reconnecting")
        await _sleep_unless(delay, self.stopped)

    # -- the loop -------------------------------------------------------------------------------
    async def run(self) -> None:
        await self.set_state("connecting")
        ws = None
        try:
            while not self.stopped():
                if ws is None:
                    ws = await self.connect()
                    if ws is None:
                        continue
                    opened = last_seen = time.monotonic()
                    ping_sent: float | None = None
                    logger.info("live connected to %s", _redact_url(self.url))
                now = time.monotonic()
                if now - opened >= self.opts.renew_after:
                    new = await self.renew(ws)
                    if new is not None:
                        ws, opened, last_seen, ping_sent = new, time.monotonic(), time.monotonic(), None
                    else:
                        opened += 30  # try the renewal again in 30 s
                    continue
                waits = [
                    self.opts.keepalive - (now - last_seen) if ping_sent is None else None,
                    self.opts.pong_timeout - (now - ping_sent) if ping_sent is not None else None,
                    self.opts.dead_after - (now - last_seen) if self.opts.dead_after else None,
                    opened + self.opts.renew_after - now,
                    1.0 if self.stop is not None else None,  # poll an external stop flag
                ]
                timeout = max(0.0, min(w for w in waits if w is not None))
                try:
                    msg = await _recv(ws, timeout)
                    if msg is None:
                        now = time.monotonic()
                        if ping_sent is not None and now - ping_sent >= self.opts.pong_timeout:
                            raise ConnectionError(f"no answer to a ping within {self.opts.pong_timeout:g}s")
                        if self.opts.dead_after and now - last_seen >= self.opts.dead_after:
                            raise ConnectionError(f"nothing received for {self.opts.dead_after:g}s")
                        if ping_sent is None and now - last_seen >= self.opts.keepalive:
                            await ws.send(json.dumps({"type": "ping"}))
                            ping_sent = now
                        continue
                except (ConnectionClosed, ConnectionError, OSError) as exc:
                    ws = await self.dropped(ws, exc, time.monotonic() - opened)
                    continue
                last_seen, ping_sent = time.monotonic(), None  # anything received answers a ping
                if msg:
                    await self.on_message(msg, ws)
        finally:
            for timer in self.timers:
                timer.cancel()
            if ws is not None:
                await ws.close()

    async def dropped(self, ws, exc: BaseException, lived: float):
        """After a drop: raise what is fatal, else wait (backoff) and answer None (reconnect)."""
        error = _close_error(exc, self.auth_code) if isinstance(exc, ConnectionClosed) else None
        if ws is not None and error is None and not isinstance(exc, ConnectionClosed):
            ws.transport.abort()  # a dead peer would not answer a closing handshake: do not wait for it
        if isinstance(error, AuthenticationError | SymbolForbiddenError):
            await self.fail(error)
        self.first_connection = False
        if error is not None:  # a policy close
            await self.refused(error)
            return None
        self.attempt = 1 if lived >= self.opts.stable_after else self.attempt + 1
        delay = self.delay(answered=True)
        logger.warning("live connection lost (%s); reconnecting in %.1fs", _redact_url(str(exc)), delay)
        await self.set_state("reconnecting")
        await _sleep_unless(delay, self.stopped)
        return None

    async def renew(self, old):
        """Open a new connection and switch to it once it delivers history; None if it fails."""
        try:
            new = await self.open()
        except InvalidStatus as exc:
            if exc.response.status_code in (401, 403):
                await self.fail(_handshake_error(exc, self.auth_code))
            logger.info(
                "live renewal refused (HTTP %s); keeping the current connection", exc.response.status_code
            )
            return None
        except (InvalidHandshake, OSError, TimeoutError) as exc:
            logger.info("live renewal failed (%s); keeping the current connection", _redact_url(str(exc)))
            return None
        waiting = {key for key, sub in self.subs.items() if sub.failed is None}
        histories: list[dict] = []
        deadline = time.monotonic() + self.opts.switch_timeout
        while waiting and time.monotonic() < deadline:
            # The old connection buffers its messages meanwhile; drained below.
            try:
                msg = await _recv(new, max(0.01, deadline - time.monotonic()))
            except ConnectionClosed:
                break
            if msg and msg.get("type") in ("history", "error"):
                waiting.discard((msg.get("symbol"), msg.get("timeframe")))
                if msg["type"] == "history":
                    histories.append(msg)
        while True:  # drain what the old connection already received, then close it
            try:
                msg = await _recv(old, 0.01)
            except ConnectionClosed:
                break
            if msg is None:
                break
            if msg:
                await self.on_message(msg, old)
        await old.close()
        for history in histories:  # anything the old connection missed, once
            await self.on_message(history, new, renewal=True)
        logger.info("live connection renewed before the 2-hour limit")
        return new

    # -- messages ---------------------------------------------------------------------------------
    async def on_message(self, msg: dict, ws, *, renewal: bool = False) -> None:
        kind = msg.get("type")
        sub = self.subs.get((msg.get("symbol"), msg.get("timeframe")))
        if kind == "error":
            await self.on_error(msg, sub, ws)
            return
        if sub is None or not self.opts.fill_missed or kind not in ("history", "bar"):
            if not renewal:
                await self.deliver(msg)
            return
        if kind == "history":
            await self.on_history(msg, sub, renewal)
        else:
            await self.on_bar(msg, sub)

    async def on_error(self, msg: dict, sub: _Subscription | None, ws) -> None:
        code = msg.get("error")
        await self.deliver(msg)
        if code in AUTH_ERROR_CODES:  # the server closes the connection next
            self.auth_code = code
            await self.fail(
                AuthenticationError(msg.get("message") or "API key refused", status=401, error=code)
            )
        if sub is None:
            return
        if code in TRANSIENT_ERRORS:  # subscribe again in a while, on the same connection
            self.attempt += 1
            wait = msg.get("retry_after")
            delay = float(wait) if isinstance(wait, int | float) and wait > 0 else max(1.0, self.delay(True))
            self.later(delay, lambda: self.send_subscribe(ws, sub))
            return
        cls = SUBSCRIBE_ERRORS.get(code, BadRequestError)
        sub.failed = cls(
            f"{sub.symbol} {sub.timeframe}s: {msg.get('message') or code}",
            error=code if isinstance(code, str) else None,
        )
        logger.warning("live subscription %s %ss refused: %s", sub.symbol, sub.timeframe, code)
        if all(s.failed is not None for s in self.subs.values()):
            await self.fail(next(iter(self.subs.values())).failed)

    def later(self, delay: float, step) -> None:
        """Run `step()` (a coroutine function) in `delay` seconds, unless the stream ends first."""

        async def run():
            await asyncio.sleep(delay)
            with contextlib.suppress(Exception):  # the connection may be gone by then
                await step()

        task = asyncio.get_running_loop().create_task(run())
        self.timers.add(task)
        task.add_done_callback(self.timers.discard)

    async def on_history(self, msg: dict, sub: _Subscription, renewal: bool) -> None:
        self.refusals = 0
        if not renewal:
            await self.set_state("live")
        candles = [
            c for c in msg.get("candles") or [] if isinstance(c, dict) and isinstance(c.get("time"), int)
        ]
        if not sub.had_history:  # the first one goes to the bot as it is
            sub.had_history = True
            if candles:  # all but the last bar are closed; the last one may still be forming
                sub.newest = candles[-1]["time"]
                sub.last_closed = candles[-2]["time"] if len(candles) >= 2 else sub.newest - sub.timeframe
            await self.deliver(msg)
            return
        # A reconnect (or renewal): the closed bars missed meanwhile, once, then the current bar.
        floor = sub.last_closed if sub.last_closed is not None else float("-inf")
        for candle in candles[:-1]:
            if candle["time"] > (sub.last_closed if sub.last_closed is not None else floor):
                await self.fill_before(sub, candle["time"])
                await self.hand_over(sub, candle, closed=True, missed=True)
        newest = sub.newest if sub.newest is not None else float("-inf")
        if candles and candles[-1]["time"] > max(floor, newest):  # a bar the bot has not seen yet
            await self.fill_before(sub, candles[-1]["time"])
            await self.hand_over(sub, candles[-1], closed=False, missed=True)

    async def on_bar(self, msg: dict, sub: _Subscription) -> None:
        candle = msg.get("candle")
        if "closed" not in msg or not isinstance(candle, dict) or not isinstance(candle.get("time"), int):
            await self.deliver(msg)  # a server that does not mark closes: passed on as it is
            return
        t = candle["time"]
        if sub.last_closed is not None and t <= sub.last_closed:
            return  # that bar was already handed over closed: a duplicate or a stale update
        # A close looks the hole up again even when a forming update of its bar already did: the
        # server publishes closes before storing them (late, after an outage), so a lookup just
        # after a reconnect can miss bars that are readable by the time this bar closes.
        await self.fill_before(sub, t, again=msg.get("closed") is True)
        sub.newest = max(sub.newest or t, t)
        if msg.get("closed") is True:
            sub.last_closed = t
        await self.deliver(msg)

    async def fill_before(self, sub: _Subscription, t: int, *, again: bool = False) -> None:
        """Before bar `t`: a hole after the last closed bar (bars that closed while we were away,
        or a bar whose close never came) is looked up in /api/candles, once per bar (`again`: once
        more, at its close); what it holds is handed over closed. A minute without ticks has no
        bar: that costs a lookup or two."""
        if sub.last_closed is None or t <= sub.last_closed + sub.timeframe:
            return
        if t <= sub.checked_until and not (again and t == sub.checked_until):
            return
        sub.checked_until = t
        for candle in await self.from_candles(sub, sub.last_closed + sub.timeframe, t):
            if candle["time"] > sub.last_closed:
                await self.hand_over(sub, candle, closed=True, missed=True)

    async def hand_over(self, sub: _Subscription, candle: dict, *, closed: bool, missed: bool) -> None:
        msg = {
            "type": "bar",
            "symbol": sub.symbol,
            "timeframe": sub.timeframe,
            "candle": candle,
            "closed": closed,
        }
        if missed:
            msg["missed"] = True
        sub.newest = max(sub.newest or candle["time"], candle["time"])
        if closed:
            sub.last_closed = candle["time"]
        await self.deliver(msg)

    async def from_candles(self, sub: _Subscription, start: int, end: int) -> list[dict]:
        """Closed bars in [start, end) from /api/candles; [] (logged) if it cannot answer."""
        candles = self.client.candles
        kw = {"timeframe": sub.timeframe, "start": start, "end": end}
        try:
            if inspect.iscoroutinefunction(candles):
                data = await candles(sub.symbol, **kw)
            else:  # the blocking client: off the event loop
                data = await asyncio.to_thread(candles, sub.symbol, **kw)
        except ChartApiError as exc:
            logger.warning("could not fill missed %s bars from /api/candles: %s", sub.symbol, exc.message)
            return []
        return [
            c for c in data.get("candles", []) if isinstance(c, dict) and start <= c.get("time", -1) < end
        ]


async def subscribe_live(
    client, url, on_msg, subscriptions, *, stop=None, max_messages=None, options=None, on_state=None
):
    """Stream `subscriptions` ((symbol, timeframe) pairs) from `url` to `on_msg` (see the module
    docstring for what is guaranteed)."""
    stream = _Stream(
        client,
        url,
        on_msg,
        subscriptions,
        stop=stop,
        max_messages=max_messages,
        options=options,
        on_state=on_state,
    )
    await stream.run()


async def _recv(ws, timeout: float) -> dict | None:
    """The next JSON object from ws, None on timeout; {} for a frame that is not one."""
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


async def _sleep_unless(seconds: float, stopped: Callable[[], bool]) -> None:
    end = time.monotonic() + seconds
    while not stopped() and time.monotonic() < end:
        await asyncio.sleep(min(0.2, max(0.0, end - time.monotonic())))
