"""What the live WebSocket routes do: connect with a key, subscribe / unsubscribe / ping, and an
`error` message (the connection stays open) for anything malformed.

Answers go to the client through the @connections API, in order: on subscribe `status`,
then `history`, then `timing`.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import orjson

from ..candles import validate_symbol
from ..errors import BadRequest, DomainError, NotFound, RateLimited, Unauthorized
from ..resample import validate_timeframe
from . import ws_protocol
from .authn import OPEN, SEND_KEY_WS, Authenticator
from .keys import KeyRegistry
from .live_connections import Connection, ConnectionStore
from .live_poster import ConnectionPoster
from .market import MarketData
from .ratelimit import RateLimiter
from .sessions import SessionSigner

# `history` holds the last HISTORY_BARS bars of the subscription, and never more than
# HISTORY_MAX_BYTES encoded (oldest bars dropped), so it stays under API Gateway's 128 KB.
# Older bars: GET /api/candles.
HISTORY_BARS = 500
HISTORY_MAX_BYTES = 120 * 1024
KNOWN_TYPES = ("subscribe", "unsubscribe", "ping")


def parse_message(body: str | bytes | None) -> dict:
    """A client frame as a dict with a known `type`, else BadRequest with a precise code."""
    try:
        doc = orjson.loads(body or b"")
    except orjson.JSONDecodeError:
        raise BadRequest(
            'messages must be JSON, e.g. {"type": "subscribe", "symbol": "BTCUSD-OTC", "timeframe": 60}',
            code="invalid_json",
        ) from None
    if not isinstance(doc, dict):
        raise BadRequest("a message must be a JSON object with a 'type'", code="invalid_message")
    kind = doc.get("type")
    if kind is None:
        raise BadRequest(f"the message has no 'type' (one of {', '.join(KNOWN_TYPES)})", code="missing_type")
    if kind not in KNOWN_TYPES:
        raise BadRequest(
            f"unknown message type {str(kind)[:40]!r} (known: {', '.join(KNOWN_TYPES)})", code="unknown_type"
        )
    return doc


def _symbol(msg: dict) -> str:
    symbol = msg.get("symbol")
    if not symbol:
        raise BadRequest(
            f'{msg["type"]} needs a "symbol", e.g. {{"type": "{msg["type"]}", "symbol": "BTCUSD-OTC", "timeframe": 60}}',
            code="missing_symbol",
        )
    if not isinstance(symbol, str):
        raise BadRequest("symbol must be a string, e.g. BTCUSD-OTC", code="invalid_symbol")
    return validate_symbol(symbol)


def bounded_history(symbol: str, timeframe: int, candles: list[dict], timing: dict) -> dict:
    """The history message, trimmed (oldest bars first) to HISTORY_MAX_BYTES."""
    msg = ws_protocol.history(symbol, timeframe, candles, timing)
    size = len(orjson.dumps(msg))
    while size > HISTORY_MAX_BYTES and msg["candles"]:
        keep = int(len(msg["candles"]) * HISTORY_MAX_BYTES / size) - 1
        msg["candles"] = msg["candles"][-keep:] if keep > 0 else []
        size = len(orjson.dumps(msg))
    return msg


class LiveSocket:
    def __init__(
        self,
        keys: KeyRegistry,
        connections: ConnectionStore,
        market: MarketData,
        poster: ConnectionPoster,
        *,
        history_bars: int = HISTORY_BARS,
        clock: Callable[[], float] = time.time,
        sessions: Callable[[], SessionSigner] | None = None,
        rate_limiter: RateLimiter | None = None,
    ):
        # Who is calling: a key, or the signed browser session a ws_url may carry; subscribes
        # count against the key's HTTP rate limit.
        self.auth = Authenticator(keys, sessions=sessions, rate_limiter=rate_limiter)
        self.keys = keys
        self.connections = connections
        self.market = market
        self.poster = poster
        self.history_bars = history_bars
        self.clock = clock

    # -- $connect / $disconnect -------------------------------------------------------------
    def connect(
        self, connection_id: str, raw_key: str | None, session_token: str | None = None
    ) -> Connection:
        """Register the connection; Unauthorized (the handshake gets 401) for a bad key.

        A browser signed in through the gate holds no raw key: /api/live/status gives it a
        ws_url with its signed session token (?session=), checked like the cookie."""
        caller = self.auth.identify(raw_key, session_token, send_key=SEND_KEY_WS)
        return self.connections.add_connection(connection_id, caller.key_id)

    def disconnect(self, connection_id: str) -> None:
        self.connections.remove_connection(connection_id)

    # -- messages ---------------------------------------------------------------------------
    def handle(self, connection_id: str, body: str | bytes | None) -> None:
        """Any client frame. Errors become an `error` message; the connection stays open,
        except when its key stopped working (then it is closed)."""
        context: dict = {}
        try:
            msg = parse_message(body)
            context = {k: msg[k] for k in ("symbol", "timeframe") if isinstance(msg.get(k), str | int)}
            getattr(self, "_" + msg["type"])(connection_id, msg)
        except Unauthorized as exc:
            self.poster.post(connection_id, ws_protocol.error(exc.code, exc.message))
            self.poster.delete(connection_id)
            self.connections.remove_connection(connection_id)
        except RateLimited as exc:
            msg = ws_protocol.error(exc.code, exc.message, **context, retry_after=exc.retry_after)
            self.poster.post(connection_id, msg)
        except DomainError as exc:
            self.poster.post(connection_id, ws_protocol.error(exc.code, exc.message, **context))

    def _connection(self, connection_id: str) -> Connection:
        connection = self.connections.get(connection_id)
        if connection is None:
            raise NotFound("this connection is no longer registered; reconnect", code="unknown_connection")
        return connection

    def _subscribe(self, connection_id: str, msg: dict) -> None:
        symbol = _symbol(msg)
        timeframe = validate_timeframe(msg.get("timeframe"))
        connection = self._connection(connection_id)
        caller = self.auth.recheck(connection.key_id)
        caller.require_symbol(symbol)
        self.connections.check_room(connection, symbol, timeframe)  # cheap early answer in a burst
        # Counted where a subscribe starts to cost (the history read and a message of up to
        # 128 KB): a flood of them gets rate_limited like HTTP requests.
        self.auth.admit(caller)
        # Read first: a failure here leaves no subscription behind.
        data = self.market.candles(caller, symbol, timeframe, limit=self.history_bars)
        ready = self.market.live_status(caller)["live"]
        # The publisher sends this subscription nothing older than the history's last bar.
        candles = data["candles"]
        since = candles[-1]["time"] if candles else data["timing"]["bar_open"]
        self.connections.subscribe(connection, symbol, timeframe, since=since)
        for message in (
            ws_protocol.status(ready, None if ready else "upstream not live yet: history only for now"),
            bounded_history(symbol, timeframe, data["candles"], data["timing"]),
            ws_protocol.timing(symbol, timeframe, data["timing"]),
        ):
            self.poster.post(connection_id, message)

    def _unsubscribe(self, connection_id: str, msg: dict) -> None:
        symbol = _symbol(msg)
        timeframe = validate_timeframe(msg.get("timeframe"))
        if not self.connections.unsubscribe(connection_id, symbol, timeframe):
            raise BadRequest(f"not subscribed to {symbol} {timeframe}", code="not_subscribed")
        ready = self.market.live_status(OPEN)["live"]
        self.poster.post(connection_id, ws_protocol.status(ready, f"unsubscribed from {symbol} {timeframe}"))

    def _ping(self, connection_id: str, msg: dict) -> None:
        self.poster.post(connection_id, ws_protocol.pong(self.clock()))
