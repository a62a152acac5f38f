"""Fake chart deployments for client, CLI and example-bot tests, speaking the spec's protocol.

`FakeLiveServer`: a WebSocket server on 127.0.0.1 (asyncio). `FakeDeployment`: the HTTP side
(live status, symbols, candles) plus a FakeLiveServer, each on its own thread, for code that
runs the blocking client (the CLI, the example bot)."""

from __future__ import annotations

import asyncio
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import serve
from websockets.datastructures import Headers
from websockets.http11 import Response


def candle(i: int) -> dict:
    return {"time": 1710000000 + 60 * i, "open": 1.0, "high": 1.2, "low": 0.9, "close": 1.0 + i / 100}


class FakeLiveServer:
    """Speaks the spec: on subscribe -> status, history, then `bars_per_connection` bar messages.

    `drop_after`: close the connection (code 1011) after that many bars;
    `refuse`: an HTTP status ("401", "403", "500") refuses the handshake with it, a close code
    ("4401", "4403", "1008") accepts then closes with it (reason `refuse_reason`);
    `errors`: symbol -> error code answered to its subscribe (e.g. {"FOO-OTC": "no_data"}).
    """

    def __init__(
        self,
        *,
        bars_per_connection=3,
        drop_after=None,
        refuse=None,
        junk_first=False,
        interval=0.0,
        feed=False,
        silent=False,
        refuse_reason="API key required or invalid",
        errors=None,
    ):
        self.bars_per_connection = bars_per_connection
        self.drop_after = drop_after
        self.refuse = refuse
        self.junk_first = junk_first
        self.interval = interval
        self.connections = 0
        self.subscribes: list[dict] = []
        self.queries: list[str] = []
        self.headers: list[str | None] = []
        self.next_bar = 0  # one shared bar sequence across connections
        self.server = None
        # feed=True: like a real deployment, one bar every `interval` goes to every subscriber
        self.feed = feed
        self.silent = silent
        self.frames: list[dict] = []
        self.subscribers: set = set()
        self.refuse_reason = refuse_reason
        self.errors = errors or {}

    def process_request(self, connection, request):
        self.queries.append(request.path)
        self.headers.append(request.headers.get("X-Api-Key"))
        if self.refuse and len(self.refuse) == 3:
            self.connections += 1
            status = int(self.refuse)
            codes = {401: "invalid_key", 403: "forbidden", 500: "internal_error"}
            body = json.dumps(
                {"error": codes.get(status, "error"), "message": f"refused with {status}"}
            ).encode()
            reason = {401: "Unauthorized", 403: "Forbidden", 500: "Internal Server Error"}.get(
                status, "Refused"
            )
            return Response(status, reason, Headers({"Content-Type": "application/json"}), body)
        return None

    async def handler(self, ws):
        self.connections += 1
        if self.refuse and len(self.refuse) == 4:
            await ws.close(int(self.refuse), self.refuse_reason)
            return
        if self.silent:  # a half-dead connection: reads frames, never answers
            async for frame in ws:
                self.frames.append(json.loads(frame))
            return
        if self.junk_first:
            await ws.send("this is not json")
            await ws.send("[1, 2]")
        sent = 0
        async for frame in ws:
            msg = json.loads(frame)
            if msg.get("type") == "ping":
                await ws.send(json.dumps({"type": "pong"}))
                continue
            self.subscribes.append(msg)
            sym, tf = msg["symbol"], msg["timeframe"]
            if sym in self.errors:
                error = {"type": "error", "error": self.errors[sym], "message": f"{sym}: {self.errors[sym]}"}
                await ws.send(json.dumps({**error, "symbol": sym, "timeframe": tf}))
                continue
            await ws.send(json.dumps({"type": "status", "connected": True, "upstream_ready": True}))
            await ws.send(
                json.dumps(
                    {"type": "history", "symbol": sym, "timeframe": tf, "candles": [candle(-1)], "timing": {}}
                )
            )
            if self.feed:
                self.subscribers.add((ws, sym, tf))
                continue
            while sent < self.bars_per_connection:
                if self.drop_after is not None and sent >= self.drop_after:
                    await ws.close(1011, "server going away")
                    return
                i = self.next_bar
                self.next_bar += 1
                await ws.send(
                    json.dumps(
                        {"type": "bar", "symbol": sym, "timeframe": tf, "candle": candle(i), "closed": True}
                    )
                )
                sent += 1
                await asyncio.sleep(self.interval)

    async def publish(self):
        while True:
            await asyncio.sleep(self.interval)
            i = self.next_bar
            self.next_bar += 1
            for ws, sym, tf in list(self.subscribers):
                msg = {"type": "bar", "symbol": sym, "timeframe": tf, "candle": candle(i), "closed": True}
                try:
                    await ws.send(json.dumps(msg))
                except Exception:  # noqa: BLE001 - a gone subscriber
                    self.subscribers.discard((ws, sym, tf))

    async def __aenter__(self):
        self.publisher = asyncio.create_task(self.publish()) if self.feed else None
        self.server = await serve(self.handler, "127.0.0.1", 0, process_request=self.process_request)
        port = self.server.sockets[0].getsockname()[1]
        self.url = f"ws://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *exc):
        if self.publisher:
            self.publisher.cancel()
        self.server.close()
        await self.server.wait_closed()


class FakeDeployment:
    """HTTP + WS of a deployment in background threads. `history`: symbol -> list of candle dicts.

    With `key`, requests without that X-Api-Key answer 401 as the real API does."""

    def __init__(self, history: dict[str, list[dict]], *, key: str | None = None, **live):
        self.history = history
        self.key = key
        self.live_kw = live
        self.requests: list[str] = []

    def __enter__(self):
        ready = threading.Event()
        self._stop = threading.Event()

        def run_ws():
            async def main():
                async with FakeLiveServer(**self.live_kw) as server:
                    self.live = server
                    ready.set()
                    while not self._stop.is_set():
                        await asyncio.sleep(0.05)

            asyncio.run(main())

        self._ws_thread = threading.Thread(target=run_ws, daemon=True)
        self._ws_thread.start()
        assert ready.wait(10)
        deployment = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def answer(self, status, body):
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                url = urlsplit(self.path)
                q = {k: v[0] for k, v in parse_qs(url.query).items()}
                deployment.requests.append(url.path)
                if deployment.key and self.headers.get("X-Api-Key") != deployment.key:
                    return self.answer(
                        401, {"error": "invalid_key", "message": "API key invalid or disabled"}
                    )
                if url.path == "/api/live/status":
                    return self.answer(200, {"live": True, "ws_url": deployment.live.url})
                if url.path == "/api/symbols":
                    names = sorted(deployment.history)
                    return self.answer(200, {"count": len(names), "symbols": [{"symbol": s} for s in names]})
                if url.path == "/api/candles":
                    bars = deployment.history.get(q.get("symbol"))
                    if bars is None:
                        return self.answer(404, {"error": "no_data", "message": "no stored data"})
                    lo, hi = int(q.get("start", 0)), int(q.get("end", 1 << 62))
                    bars = [b for b in bars if lo <= b["time"] < hi]
                    if "limit" in q:
                        bars = bars[-int(q["limit"]) :]
                    return self.answer(
                        200,
                        {
                            "symbol": q["symbol"],
                            "timeframe": int(q.get("timeframe", 60)),
                            "count": len(bars),
                            "candles": bars,
                            "last_closed": True,
                            "timing": {},
                        },
                    )
                return self.answer(404, {"error": "no_such_endpoint", "message": url.path})

            def do_POST(self):
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                self.answer(200, {"ok": True, "key_id": "key_fake", "name": "fake", "all_symbols": True})

        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.http.server_address[1]}"
        self._http_thread = threading.Thread(target=self.http.serve_forever, daemon=True)
        self._http_thread.start()
        return self

    def __exit__(self, *exc):
        self.http.shutdown()
        self.http.server_close()
        self._stop.set()
        self._ws_thread.join(5)
