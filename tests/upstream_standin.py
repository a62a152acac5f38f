"""A stand-in Tradowix upstream for tests: speaks exactly the protocol of the README's
"Upstream protocol" section (authRequired/authenticate/authenticated, ping/pong,
subscribeTicks → tickUpdate/quote, requestOlderTicks → candleHistory, getBalance →
instruments). Prices come from SyntheticMarket, so tests can compare bars exactly.

Fault knobs: `accept_tokens` (others are refused), `never_authenticate`, `extra_frames`
(raw frames sent after each subscription: not JSON, unknown types, bad ticks, duplicates),
`history_overlap` (pages reach that many minutes past `olderThan`), `drop_links()`,
`answer_history` (False: history requests go unanswered), `late_start` (a subscription is served only that many seconds into the next minute: an
upstream that gets round to it late), `paused` (streams hold their ticks back while links
stay up and answer pings: a lagging upstream; the held ticks follow once it is cleared).
Runs its own event loop in a thread so subprocess collectors can use it as well.

On a ManualClock the streams send what the clock has reached, and `idle(source)` says when
everything is delivered: every frame either side sent has been read by the other, and every
stream has sent its ticks up to now (so a test moves the clock, then waits for `idle`).
"""

from __future__ import annotations

import asyncio
import json
import threading

from tradowix_bot.collector.clock import Clock
from tradowix_bot.collector.synthetic_market import SyntheticMarket
from tradowix_bot.symbols import DEFAULT_SYMBOLS
from websockets.asyncio.server import serve


class StandinUpstream:
    def __init__(self, clock: Clock | None = None, *, token: str = "good-token", symbols=DEFAULT_SYMBOLS):
        self.clock = clock or Clock()
        self.market = SyntheticMarket(symbols)
        self.accept_tokens = {token}
        self.never_authenticate = False
        self.extra_frames: list[str] = []
        self.history_overlap = 0
        self.late_start: float | None = None
        self.paused = False
        self.answer_history = True
        self.connections = 0
        self.auth_attempts = 0
        self.history_requests = 0
        self.pings = 0
        self.cookies: list[str] = []
        self.subscriptions: list[str] = []
        self._sockets: set = set()
        self._frames: dict = {}  # socket → [sent, received]
        self._caught_up: dict = {}  # streaming socket → the time it has sent ticks up to
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.port = 0

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    def start(self) -> StandinUpstream:
        self._thread.start()
        self._ready.wait(10)
        return self

    def stop(self) -> None:
        """At once: links are dropped (no close handshake to wait for with a client that may
        already be gone), then the server closes."""
        self.drop_links()
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)

    def drop_links(self) -> None:
        """Close every open connection (the upstream drops the link); done when this returns."""

        async def abort_all():
            for ws in list(self._sockets):
                ws.transport.abort()  # no close handshake: the TCP link just dies
                self._forget(ws)

        asyncio.run_coroutine_threadsafe(abort_all(), self._loop).result(10)

    def idle(self, source) -> bool:
        """Nothing in flight between this upstream and `source` (a TradowixSource), and every
        stream has sent its ticks up to the clock's time."""
        if source.connecting:
            return False
        now = self.clock.now()
        frames = {ws.remote_address[1]: tuple(n) for ws, n in list(self._frames.items())}
        if frames != {port: (received, sent) for port, (sent, received) in source.link_frames().items()}:
            return False
        return all(self.paused or t >= now for t in list(self._caught_up.values()))

    def _forget(self, ws) -> None:
        self._sockets.discard(ws)
        self._frames.pop(ws, None)
        self._caught_up.pop(ws, None)

    async def _send(self, ws, text: str) -> None:
        await ws.send(text)
        self._frames[ws][0] += 1

    async def _recv(self, ws) -> str:
        raw = await ws.recv()
        self._frames[ws][1] += 1
        return raw

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._main())

    async def _main(self) -> None:
        self._stop = asyncio.Event()
        async with serve(self._handle, "127.0.0.1", 0) as server:
            self.port = server.sockets[0].getsockname()[1]
            self._ready.set()
            await self._stop.wait()

    async def _handle(self, ws) -> None:
        self.connections += 1
        self.cookies.append(ws.request.headers.get("Cookie", ""))
        self._sockets.add(ws)
        self._frames[ws] = [0, 0]
        stream: asyncio.Task | None = None
        try:
            await self._send(ws, json.dumps({"type": "authRequired"}))
            msg = json.loads(await self._recv(ws))
            if msg.get("type") != "authenticate":
                return
            self.auth_attempts += 1
            if self.never_authenticate:
                await ws.wait_closed()  # silent until the client gives up
                return
            if msg.get("token") not in self.accept_tokens:
                await self._send(ws, json.dumps({"type": "error", "message": "invalid session"}))
                self._forget(ws)
                await ws.close()
                return
            await self._send(ws, json.dumps({"type": "authenticated"}))
            while True:
                msg = json.loads(await self._recv(ws))
                kind = msg.get("type")
                if kind == "ping":
                    self.pings += 1
                    await self._send(ws, json.dumps({"type": "pong", "requestId": msg.get("requestId")}))
                elif kind == "getBalance":
                    await self._send(ws, json.dumps({"type": "balanceUpdate", "data": {"balance": 1000}}))
                    await self._send(ws, json.dumps({"type": "instruments", "data": self._instruments()}))
                elif kind == "subscribeTicks":
                    self.subscriptions.append(msg["symbol"])
                    if stream:
                        stream.cancel()
                    stream = asyncio.create_task(self._serve_subscription(ws, msg["symbol"]))
                elif kind == "requestOlderTicks":
                    self.history_requests += 1
                    if not self.answer_history:
                        continue
                    older = int(msg["olderThan"]) // 1000
                    minutes = min(int(msg.get("minutes", 400)), 400)
                    end = older - older % 60 + self.history_overlap * 60
                    end = min(end, int(self.clock.now()) - int(self.clock.now()) % 60)
                    bars = self.market.bars(msg["symbol"], older - older % 60 - minutes * 60, end)
                    rows = [[b.time * 1000, b.open, b.high, b.low, b.close] for b in bars]
                    await self._send(
                        ws,
                        json.dumps(
                            {
                                "type": "candleHistory",
                                "requestId": msg.get("requestId"),
                                "data": {"candles": rows},
                            }
                        ),
                    )
        except Exception:  # noqa: BLE001 - a closed socket ends the handler
            pass
        finally:
            self._forget(ws)
            if stream:
                stream.cancel()

    def _instruments(self) -> list[dict]:
        return [
            {
                "symbol": i.symbol,
                "name": i.name,
                "displayName": i.name,
                "category": i.category,
                "groupName": i.category,
                "precision": i.precision,
                "isActive": True,
                "isOtc": True,
                "isOpen": True,
            }
            for i in self.market.symbols.values()
        ]

    async def _serve_subscription(self, ws, symbol: str) -> None:
        if self.late_start is not None:
            now = self.clock.now()
            await self.clock.sleep_until(now - now % 60 + 60 + self.late_start)
        await self._send(
            ws,
            json.dumps({"type": "subscribed", "activeSymbol": symbol, "subscribed": [symbol], "failed": []}),
        )
        for frame in self.extra_frames:
            await self._send(ws, frame)
        await self._stream(ws, symbol)

    async def _stream(self, ws, symbol: str) -> None:
        last = self.clock.now()
        self._caught_up[ws] = last
        n = 0
        minute_ticks: dict[int, list] = {}  # each minute's ticks computed once: the stand-in stays cheap
        while True:
            if self.paused:
                await self.clock.sleep(0.2)
                continue
            now = self.clock.now()
            minute = int(last) - int(last) % 60
            for old in [m for m in minute_ticks if m < minute]:
                del minute_ticks[old]
            ticks = []
            while minute <= now:
                if minute not in minute_ticks:
                    minute_ticks[minute] = self.market.minute_ticks(symbol, minute)
                ticks += [tk for tk in minute_ticks[minute] if last < tk[0] <= now]
                minute += 60
            for ts, price in ticks:
                n += 1
                if n % 2:
                    frame = {
                        "type": "tickUpdate",
                        "data": {"symbol": symbol, "tick": [price, int(round(ts * 1000))]},
                    }
                else:
                    frame = {
                        "type": "quote",
                        "data": {"symbol": symbol, "price": price, "timestamp": int(round(ts * 1000))},
                    }
                await self._send(ws, json.dumps(frame))
            self._caught_up[ws] = now
            if ticks:
                last = ticks[-1][0]
            # From the time it read (the clock may have moved since); not every few ms on a compressed clock.
            await self.clock.sleep_until(now + max(0.2, self.clock.slack(0.02)))


__all__ = ["DEFAULT_SYMBOLS", "StandinUpstream"]
