"""The Tradowix adapter: the upstream's WebSocket protocol, and nothing else knows it.

Protocol (what public clients have observed; parsed defensively):
    server {"type":"authRequired"} → client {"type":"authenticate","token"} → server {"type":"authenticated"}
    client {"type":"ping","requestId":"ping-<ms>"} every ~10 s → server "pong"
    client subscribeTicks {symbol} → server tickUpdate {symbol, tick:[price, ms]} / quote {symbol, price, timestamp}
    client requestOlderTicks {symbol, olderThan, minutes<=400, requestId} → server candleHistory {requestId, data.candles}
    client getBalance → server balanceUpdate + instruments

Coverage: the upstream streams one active symbol per connection, so every watched symbol
gets its own connection (see README "Why one connection per symbol"): rotating one link
through N symbols would see each symbol 1/N of the time and its bars could not be built
from ticks at all. One extra "control" connection carries instrument and history requests.

Each link reconnects by itself with exponential backoff and jitter; a refused or never
confirmed session token backs off for minutes (`auth_backoff`), never a hot loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import random
from asyncio import FIRST_COMPLETED
from collections.abc import Callable

import websockets
from websockets.asyncio.client import connect

from ..candles import Bar, valid_bar, validate_symbol
from ..errors import BadRequest
from ..server.logs import get_logger
from ..server.redact import redact, register_secret
from ..symbols import SymbolInfo
from .sources import (
    MAX_HISTORY_MINUTES,
    AuthFailed,
    Linked,
    Source,
    SourceError,
    Tick,
    TokenMissing,
    Unlinked,
)

log = get_logger("collector")
USER_AGENT = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36"
)
HOUSEKEEPING = {"pong", "timeSync", "balanceUpdate", "subscribed", "authRequired", "authenticated"}


class _Link:
    """One authenticated WebSocket connection and its reader."""

    def __init__(self, source: TradowixSource, ws, label: str, frames: list[int]):
        self.source = source
        self.ws = ws
        self.label = label
        self.frames = frames  # [sent, received] since the connection opened
        self.reader = asyncio.create_task(self._read(), name=f"read-{label}")
        self.pinger = asyncio.create_task(self._ping(), name=f"ping-{label}")

    async def send(self, message: dict) -> None:
        try:
            await self.ws.send(json.dumps(message))
        except websockets.ConnectionClosed as exc:
            raise SourceError(f"link closed: {exc}") from None
        self.frames[0] += 1

    async def _ping(self) -> None:
        while True:
            await asyncio.sleep(self.source.ping_interval)
            with contextlib.suppress(SourceError):
                await self.send({"type": "ping", "requestId": f"ping-{int(self.source.clock.now() * 1000)}"})

    async def _read(self) -> None:
        try:
            while True:
                # No frame for 3 pings' time: the link is dead even if TCP has not noticed.
                # (asyncio.timeout, not wait_for: no task per frame.)
                async with asyncio.timeout(3 * self.source.ping_interval):
                    raw = await self.ws.recv()
                self.frames[1] += 1
                self.source.handle_frame(raw)
        except (websockets.ConnectionClosed, TimeoutError, OSError):
            pass
        finally:
            self.pinger.cancel()

    async def wait_closed(self) -> None:
        await asyncio.wait([self.reader])  # our own cancellation still propagates

    async def close(self) -> None:
        self.reader.cancel()
        self.pinger.cancel()
        with contextlib.suppress(Exception):
            await self.ws.close()


DEFAULT_URL = "wss://api.tradowix.com/ws"  # override with --url / TRADOWIX_WS_URL


class TradowixSource(Source):
    name = "tradowix"
    history_page_minutes = MAX_HISTORY_MINUTES

    def __init__(
        self,
        url: str,
        token: str | None,  # None: none stored yet; start() waits for one (reload_token)
        clock,
        *,
        ping_interval: float = 10.0,
        auth_timeout: float = 10.0,
        request_timeout: float = 15.0,
        backoff_max: float = 60.0,
        auth_backoff: float = 300.0,
        origin: str = "https://tradowix.com",
        reload_token: Callable[[], str | None] | None = None,
        token_recheck_seconds: float = 15.0,
    ):
        super().__init__()
        self.url = url
        self._token = token
        register_secret(token)  # scrubbed from every log line and stored status from now on
        # Where the token is stored (SSM, token file): re-read while the upstream refuses the
        # current one, so a token the owner replaces in the admin panel is used within
        # `token_recheck_seconds`, with no restart.
        self.reload_token = reload_token
        self.token_recheck_seconds = token_recheck_seconds
        self._token_checked_at = float("-inf")
        self.clock = clock
        self.ping_interval = ping_interval
        self.auth_timeout = auth_timeout
        self.request_timeout = request_timeout
        self.backoff_max = backoff_max
        self.auth_backoff = auth_backoff
        self.origin = origin
        self.connects = 0
        self.connecting = 0  # links being opened (connect and handshake)
        self._control: _Link | None = None
        self._control_lock = asyncio.Lock()
        self._streams: dict[str, asyncio.Task] = {}
        self._links: dict[str, _Link] = {}
        self._pending: dict[str, asyncio.Future] = {}
        self._instruments: asyncio.Future | None = None
        self._ids = itertools.count(1)

    def __repr__(self) -> str:  # never show the token
        return f"TradowixSource({self.url!r})"

    # -- connecting ------------------------------------------------------------------------
    async def _open(self, label: str) -> _Link:
        self.connects += 1
        self.connecting += 1
        try:
            return await self._connect(label)
        finally:
            self.connecting -= 1

    def link_frames(self) -> dict[int, tuple[int, int]]:
        """Open links by local port: (frames sent, frames received). With the upstream's own
        count, a test tells when everything sent has arrived (nothing left in flight)."""
        links = [self._control, *self._links.values()]
        return {
            link.ws.local_address[1]: (link.frames[0], link.frames[1])
            for link in links
            if link is not None and not link.reader.done()
        }

    async def _connect(self, label: str) -> _Link:
        frames = [0, 0]
        try:
            ws = await connect(
                self.url,
                additional_headers={"Cookie": f"session-token={self._token}"},
                origin=self.origin,
                user_agent_header=USER_AGENT,
                open_timeout=self.auth_timeout,
                ping_interval=None,  # the protocol's own ping keeps the link alive
                max_size=16 * 1024 * 1024,
            )
        except (OSError, TimeoutError, websockets.InvalidHandshake, websockets.InvalidURI) as exc:
            raise SourceError(
                f"cannot connect to the upstream: {type(exc).__name__}: {redact(str(exc))}"
            ) from None
        try:
            await self._handshake(ws, frames)
        except BaseException:
            with contextlib.suppress(Exception):
                await ws.close()
            raise
        self.status.connected = self.status.authenticated = True
        self.status.clear_error()
        return _Link(self, ws, label, frames)

    async def _handshake(self, ws, frames: list[int]) -> None:
        sent = False
        try:
            async with asyncio.timeout(self.auth_timeout):  # wall time: it waits on the network
                while True:
                    raw = await ws.recv()
                    frames[1] += 1
                    try:
                        msg = json.loads(raw)
                    except (TypeError, ValueError):
                        self.status.reject("not_json")
                        continue
                    kind = msg.get("type") if isinstance(msg, dict) else None
                    if kind == "authRequired" and not sent:
                        await ws.send(json.dumps({"type": "authenticate", "token": self._token}))
                        frames[0] += 1
                        sent = True
                    elif kind == "authenticated" and sent:
                        return
                    elif sent and kind not in ("timeSync", "pong"):
                        self.status.authenticated = False
                        raise AuthFailed(f"the upstream refused the session token (answered {kind!r})")
        except TimeoutError:
            self.status.authenticated = False
            step = "confirm the session" if sent else "ask for authentication"
            raise AuthFailed(f"the upstream did not {step} within {self.auth_timeout:g}s") from None
        except websockets.ConnectionClosed as exc:
            self.status.authenticated = False
            raise AuthFailed(f"the upstream closed the link during authentication ({exc.code})") from None

    async def wait_for_new_token(self, seconds: float) -> None:
        """Wait `seconds` after a refused token, or until a new token is stored (re-read every
        `token_recheck_seconds`, once for all links)."""
        refused = self._token
        deadline = self.clock.now() + seconds
        while (left := deadline - self.clock.now()) > 0:
            if self._token != refused or await self._reload_token():
                return
            await self.clock.sleep(min(left, self.token_recheck_seconds))

    async def _reload_token(self) -> bool:
        """Whether the stored token changed (then it is used from now on)."""
        if (
            self.reload_token is None
            or self.clock.now() - self._token_checked_at < self.token_recheck_seconds
        ):
            return False
        self._token_checked_at = self.clock.now()
        try:
            stored = await asyncio.to_thread(self.reload_token)
        except Exception as exc:  # noqa: BLE001 - keep the current token; one line, never a value
            log.warning("cannot re-read the session token", extra={"error": type(exc).__name__})
            return False
        if stored and stored != self._token:
            register_secret(stored)
            self._token = stored
            log.info("a new session token is stored; reconnecting")  # once, not once per link
            return True
        return False

    async def _control_link(self) -> _Link:
        async with self._control_lock:
            if self._control is None or self._control.reader.done():
                self._control = await self._open("control")
            return self._control

    async def start(self) -> None:
        if not self._token and not await self._reload_token():
            raise TokenMissing(
                "no Tradowix session token is stored yet; waiting for one (store it: README, "
                "'Pointing it at the real upstream')"
            )
        await self._control_link()

    async def close(self) -> None:
        for task in self._streams.values():
            task.cancel()
        for task in list(self._streams.values()):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._streams.clear()
        if self._control:
            await self._control.close()
        self.status.connected = False

    # -- requests --------------------------------------------------------------------------
    async def _request(self, message: dict, request_id: str) -> object:
        link = await self._control_link()
        future = asyncio.get_running_loop().create_future()
        self._pending[request_id] = future
        try:
            await link.send(message)
            return await self._answer(link, future, message["type"])
        finally:
            self._pending.pop(request_id, None)

    async def _answer(self, link: _Link, future: asyncio.Future, what: str) -> object:
        """The answer to a request sent on `link`; a link that dies first fails it at once
        (its answer can never come) instead of after the whole request timeout."""
        await asyncio.wait({future, link.reader}, timeout=self.request_timeout, return_when=FIRST_COMPLETED)
        if future.done():
            return future.result()
        if link.reader.done():
            raise SourceError(f"the link closed before {what} was answered")
        raise SourceError(f"no answer to {what} within {self.request_timeout:g}s")

    async def instruments(self) -> list[SymbolInfo]:
        self._instruments = asyncio.get_running_loop().create_future()
        link = await self._control_link()
        await link.send({"type": "getBalance"})
        items = await self._answer(link, self._instruments, "getBalance (the instrument list)")
        return parse_instruments(items, self.status)

    async def history(self, symbol: str, older_than: int, minutes: int) -> list[Bar]:
        request_id = f"hist-{next(self._ids)}"
        data = await self._request(
            {
                "type": "requestOlderTicks",
                "symbol": symbol,
                "olderThan": int(older_than) * 1000,
                "minutes": max(1, min(int(minutes), MAX_HISTORY_MINUTES)),
                "timeframe": 60,
                "requestId": request_id,
            },
            request_id,
        )
        bars = {}
        for row in data if isinstance(data, list) else []:
            bar = parse_history_row(row)
            if bar is None:
                self.status.reject("bad_history_row")
            else:
                bars[bar.time] = bar  # overlapping rows: one bar per minute
        return [bars[t] for t in sorted(bars)]

    # -- streaming -------------------------------------------------------------------------
    async def watch(self, symbol: str) -> None:
        if symbol not in self._streams:
            self._streams[symbol] = asyncio.create_task(self._stream(symbol), name=f"stream-{symbol}")

    async def unwatch(self, symbol: str) -> None:
        task = self._streams.pop(symbol, None)
        if task:
            task.cancel()

    async def _stream(self, symbol: str) -> None:
        backoff = 1.0
        while True:
            link = None
            try:
                link = await self._open(symbol)
                self._links[symbol] = link
                # Linked goes out before the subscription, so every tick of this link follows it:
                # the collector takes the minute of the first valid one as the partial minute.
                self.emit(Linked(symbol, self.clock.now()))
                await link.send(
                    {
                        "type": "subscribeTicks",
                        "symbol": symbol,
                        "lookbackMinutes": 200,
                        "timeframe": 60,
                        "chartType": "candle",
                    }
                )
                backoff = 1.0
                await link.wait_closed()
                self.emit(Unlinked(symbol, "link dropped"))
                self.status.fail("upstream_link_dropped", f"link for {symbol} dropped")
                wait = random.uniform(0.2, 1.0)  # a dropped link reconnects at once, with jitter
            except AuthFailed as exc:
                self.status.fail("upstream_auth_failed", str(exc))
                log.error(
                    "upstream refused the session token",
                    extra={"symbol": symbol, "retry_in": self.auth_backoff},
                )
                wait = None  # until auth_backoff is over or a new token is stored
            except SourceError as exc:
                self.status.fail("upstream_unreachable", str(exc))
                wait = backoff * random.uniform(0.5, 1.5)
                backoff = min(backoff * 2, self.backoff_max)
                log.warning(
                    "upstream link failed",
                    extra={"symbol": symbol, "error": str(exc), "retry_in": round(wait, 1)},
                )
            except asyncio.CancelledError:
                if link:
                    with contextlib.suppress(Exception):
                        await link.send({"type": "unsubscribeTicks", "symbol": symbol})
                    await link.close()
                raise
            finally:
                self._links.pop(symbol, None)
                self.status.connected = bool(self._links) or bool(
                    self._control and not self._control.reader.done()
                )
            if wait is None:
                await self.wait_for_new_token(self.auth_backoff)
            else:
                await self.clock.sleep(wait)

    # -- frames ----------------------------------------------------------------------------
    def handle_frame(self, raw) -> None:
        """Dispatch one server frame; anything malformed is counted and dropped, never fatal."""
        try:
            msg = json.loads(raw)
        except (TypeError, ValueError):
            self.status.reject("not_json")
            return
        if not isinstance(msg, dict) or not isinstance(msg.get("type"), str):
            self.status.reject("not_a_message")
            return
        kind, data = msg["type"], msg.get("data")
        if (
            kind == "tickUpdate"
            and isinstance(data, dict)
            and isinstance(data.get("tick"), list)
            and len(data["tick"]) == 2
        ):
            self._tick(data.get("symbol"), data["tick"][0], data["tick"][1])
        elif kind == "quote" and isinstance(data, dict):
            self._tick(data.get("symbol"), data.get("price"), data.get("timestamp"))
        elif kind == "candleHistory":
            future = self._pending.get(str(msg.get("requestId")))
            candles = data.get("candles") if isinstance(data, dict) else None
            if future and not future.done():
                future.set_result(candles if isinstance(candles, list) else [])
        elif kind == "instruments":
            if self._instruments and not self._instruments.done():
                self._instruments.set_result(data if isinstance(data, list) else [])
        elif kind == "error":
            # Upstream text may quote anything (a session token included): the owner gets it
            # scrubbed, partners only the code.
            self.status.fail(
                "upstream_error", redact(f"upstream error: {str(msg.get('message') or data)[:200]}")
            )
        elif kind in HOUSEKEEPING:
            pass
        elif kind in ("tickUpdate", "quote"):
            self.status.reject("bad_tick_message")
        else:
            self.status.reject("unknown_type")

    def _tick(self, symbol, price, timestamp) -> None:
        if not isinstance(symbol, str):
            self.status.reject("bad_tick_message")
            return
        self.emit(Tick(symbol, price, timestamp))


def parse_history_row(row) -> Bar | None:
    """`[timestamp_ms, open, high, low, close]` → Bar, or None when it is not a sane bar."""
    if not isinstance(row, list | tuple) or len(row) < 5:
        return None
    values = row[:5]
    if any(isinstance(v, bool) or not isinstance(v, int | float) for v in values):
        return None
    t = int(values[0]) // 1000
    o, h, lo, c = (float(v) for v in values[1:])
    return Bar(t, o, h, lo, c) if valid_bar((t, o, h, lo, c)) else None


def parse_instruments(items: list, status) -> list[SymbolInfo]:
    out = []
    for item in items:
        if not isinstance(item, dict) or item.get("isActive") is False:
            continue
        try:
            symbol = validate_symbol(str(item.get("symbol") or ""))
            precision = int(item.get("precision", 5))
        except (BadRequest, TypeError, ValueError):
            status.reject("bad_instrument")
            continue
        out.append(
            SymbolInfo(
                symbol=symbol,
                name=str(item.get("displayName") or item.get("name") or symbol),
                category=str(item.get("category") or item.get("groupName") or "other"),
                precision=precision,
            )
        )
    return out
