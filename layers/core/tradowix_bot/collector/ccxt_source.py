"""The ccxt source: trades and 1m OHLCV of named markets on any exchange ccxt supports, for owners
without a Tradowix session.

ccxt (https://github.com/ccxt/ccxt, MIT, maintained, 100+ exchanges) hides each exchange's
REST API behind one interface, so this adapter is thin:

- live: `fetch_trades` polled every `poll_seconds` from the moment of the watch; each new trade
  is a Tick (price, exchange timestamp). The collector turns ticks into 1m bars as for any
  source, so a bar's volume is the minute's trade count (tick volume).
- history (gap repair and backfill): `fetch_ohlcv(..., "1m")`, closed minutes only.
- a failed poll (network, exchange down, rate limit) emits Unlinked; the next good poll emits
  Linked again, so the collector repairs the gap from history.

Market names like `BTC/USDT` cannot name a stored series ('/' is refused), so each market has
a store symbol: `BTC/USDT` -> `BTC-USDT` unless given as `BTC/USDT=BTCUSDT`.

Only public market data is read: no API key, nothing is ever traded. `ccxt` is in the `ccxt`
extra (`pip install 'tradowix-bot[ccxt]'`), imported only when this source is used.
"""

from __future__ import annotations

import asyncio
import contextlib
import math

from ..candles import MINUTE, Bar, valid_bar, validate_symbol
from ..errors import BadRequest
from ..symbols import SymbolInfo
from .sources import AuthFailed, Linked, Source, SourceError, Tick, Unlinked

TRADES_PER_POLL = 1000


def parse_markets(spec: str) -> dict[str, str]:
    """`BTC/USDT,ETH/USDT=ETHUSDT` -> {store symbol: exchange market}; BadRequest when unusable."""
    markets: dict[str, str] = {}
    for item in (s.strip() for s in spec.split(",")):
        if not item:
            continue
        market, _, name = item.partition("=")
        market = market.strip()
        name = name.strip() or market.replace("/", "-").replace(":", "-")
        try:
            validate_symbol(name)
        except BadRequest as exc:
            raise BadRequest(f"market {market!r}: store symbol {name!r}: {exc.message}") from None
        if name in markets:
            raise BadRequest(f"markets {markets[name]!r} and {market!r} both map to {name!r}")
        markets[name] = market
    if not markets:
        raise BadRequest("name at least one market, e.g. --markets BTC/USDT,ETH/USDT")
    return markets


def _digits(precision, tick_size_mode: bool) -> int:
    """Price decimals from a ccxt market's precision (a tick size or a number of decimals)."""
    if not isinstance(precision, int | float) or precision <= 0:
        return 8
    if tick_size_mode:
        return max(0, round(-math.log10(precision)))
    return int(precision)


class CcxtSource(Source):
    name = "ccxt"
    history_page_minutes = 500  # within every major exchange's OHLCV page (Binance 1000, OKX 300+)

    def __init__(
        self, exchange_id: str, markets: dict[str, str], clock, *, poll_seconds: float = 2.0, exchange=None
    ):
        super().__init__()
        self.exchange_id = exchange_id
        self.markets = dict(markets)  # store symbol -> exchange market
        self.clock = clock
        self.poll_seconds = poll_seconds
        self._exchange = exchange  # injected in tests; else built in start()
        # Imported here, not at module level: without the [ccxt] extra the CLI names the extra.
        import ccxt

        self._errors = ccxt
        self._tasks: dict[str, asyncio.Task] = {}

    # -- ccxt ------------------------------------------------------------------------------------
    async def _call(self, what: str, coro):
        """Runs a ccxt call; its failures become the source errors the collector understands."""
        ccxt = self._errors
        try:
            return await coro
        except ccxt.AuthenticationError as exc:
            self.status.last_error = "upstream_auth_failed"
            raise AuthFailed(f"{self.exchange_id}: {what}: {type(exc).__name__}") from None
        except (ccxt.NetworkError, ccxt.ExchangeError) as exc:
            # NetworkError covers timeouts, an exchange that is down and rate limits.
            self.status.last_error = "upstream_unavailable"
            raise SourceError(f"{self.exchange_id}: {what}: {type(exc).__name__}: {str(exc)[:200]}") from None

    # -- the Source interface --------------------------------------------------------------------
    async def start(self) -> None:
        if self._exchange is None:
            import ccxt.async_support as ccxt_async

            if self.exchange_id not in ccxt_async.exchanges:
                raise BadRequest(
                    f"unknown exchange {self.exchange_id!r} (ccxt knows e.g. binance, kraken, okx)"
                )
            self._exchange = getattr(ccxt_async, self.exchange_id)({"enableRateLimit": True})
        try:
            await self._call("loading markets", self._exchange.load_markets())
            unknown = [m for m in self.markets.values() if m not in self._exchange.markets]
            if unknown:
                raise BadRequest(
                    f"{self.exchange_id} has no market {', '.join(unknown)} "
                    f"(markets look like {next(iter(self._exchange.markets), 'BTC/USDT')})"
                )
        except BaseException:
            # Callers may not close a source whose start failed: release ccxt's HTTP session here.
            with contextlib.suppress(Exception):
                await self._exchange.close()
            raise
        self.status.connected = self.status.authenticated = True

    async def close(self) -> None:
        for symbol in list(self._tasks):
            await self.unwatch(symbol)
        if self._exchange is not None:
            with contextlib.suppress(Exception):
                await self._exchange.close()
        self.status.connected = False

    async def instruments(self) -> list[SymbolInfo]:
        tick_mode = getattr(self._exchange, "precisionMode", None) == getattr(self._errors, "TICK_SIZE", None)
        infos = []
        for symbol, market in self.markets.items():
            info = (self._exchange.markets or {}).get(market, {})
            digits = _digits((info.get("precision") or {}).get("price"), tick_mode)
            infos.append(SymbolInfo(symbol, f"{market} ({self.exchange_id})", "crypto", digits))
        return infos

    async def watch(self, symbol: str) -> None:
        if symbol not in self.markets:
            raise BadRequest(f"{symbol!r} is not one of the named markets ({', '.join(self.markets)})")
        if symbol not in self._tasks:
            self._tasks[symbol] = asyncio.create_task(self._poll_trades(symbol), name=f"ccxt-{symbol}")

    async def unwatch(self, symbol: str) -> None:
        task = self._tasks.pop(symbol, None)
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def history(self, symbol: str, older_than: int, minutes: int) -> list[Bar]:
        market = self.markets[symbol]
        end = min(older_than, int(self.clock.now()) // MINUTE * MINUTE)  # closed minutes only
        since = end - minutes * MINUTE
        rows = await self._call(
            f"1m history of {market}",
            self._exchange.fetch_ohlcv(market, "1m", since=since * 1000, limit=minutes),
        )
        bars: dict[int, Bar] = {}
        for row in rows or []:
            try:
                t, o, h, lo, c = int(row[0]) // 1000, *(float(x) for x in row[1:5])
            except (TypeError, ValueError, IndexError):
                self.status.reject("bad_ohlcv")
                continue
            if since <= t < end and valid_bar((t, o, h, lo, c)):
                bars[t] = Bar(t, o, h, lo, c)
            elif since <= t < end:
                self.status.reject("bad_ohlcv")
        return [bars[t] for t in sorted(bars)]

    # -- live ------------------------------------------------------------------------------------
    async def _poll_trades(self, symbol: str) -> None:
        market = self.markets[symbol]
        cursor_ms = int(self.clock.now() * 1000)  # trades from the watch on: the past is history's
        seen_at_cursor: set[str] = set()  # ids of trades at cursor_ms already emitted
        linked = False
        while True:
            try:
                trades = await self._call(
                    f"trades of {market}",
                    self._exchange.fetch_trades(market, since=cursor_ms, limit=TRADES_PER_POLL),
                )
            except SourceError as exc:
                if linked:
                    self.emit(Unlinked(symbol, str(exc)))
                    linked = False
                self.status.connected = False
                await self.clock.sleep(self.poll_seconds)
                continue
            if not linked:
                self.emit(Linked(symbol, self.clock.now()))
                self.status.connected = True
                linked = True
            for trade in sorted(trades or [], key=lambda t: (t.get("timestamp") or 0, str(t.get("id")))):
                ts, trade_id = trade.get("timestamp"), str(trade.get("id"))
                if (
                    not isinstance(ts, int)
                    or ts < cursor_ms
                    or (ts == cursor_ms and trade_id in seen_at_cursor)
                ):
                    continue
                if ts > cursor_ms:
                    cursor_ms, seen_at_cursor = ts, set()
                seen_at_cursor.add(trade_id)
                self.emit(Tick(symbol, trade.get("price"), ts))  # validated by the collector
            await self.clock.sleep(self.poll_seconds)
