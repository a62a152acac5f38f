"""Given a ccxt exchange (Binance's real adapter, answered offline), when the ccxt source (issue 13
item 8) collects named markets, then their trades stream as ticks and their 1m history lands in
the same 1m store as every other source.

Offline: ccxt's real Binance adapter runs (market loading, request building, parsing), and only
its one HTTP seam, `Exchange.fetch(url, ...)`, is answered from the files in `recorded/binance/`:
Binance's wire format (exchangeInfo, klines, aggTrades) for 3 hours of BTCUSDT/ETHUSDT. They were
written in that format by hand (this machine has no internet to record from); the fake applies
Binance's query rules (startTime, endTime, limit) to them. Time is a fake clock."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import ccxt
import ccxt.async_support as ccxt_async
import pytest
from tradowix_bot.candles import Bar
from tradowix_bot.cli.__main__ import main
from tradowix_bot.collector import Clock
from tradowix_bot.collector.archive import StoreTarget, archive
from tradowix_bot.collector.ccxt_source import CcxtSource, parse_markets
from tradowix_bot.collector.sources import Linked, SourceError, Tick, Unlinked
from tradowix_bot.errors import BadRequest

RECORDED = Path(__file__).parent / "recorded" / "binance"
T0 = 1_759_996_800  # the first recorded minute (2025-10-09 08:00 UTC); 180 minutes are recorded
END = T0 + 180 * 60


class FakeClock:
    def __init__(self, now: float):
        self.t = now

    def now(self) -> float:
        return self.t

    async def sleep(self, seconds: float) -> None:
        self.t += seconds
        await asyncio.sleep(0)


class RecordedBinance:
    """Answers ccxt's requests from the recording, as Binance would at `clock.now()`."""

    def __init__(self, clock: FakeClock):
        self.clock = clock
        self.urls: list[str] = []
        self.down = False  # the exchange cannot be reached

    def load(self, name: str):
        return json.loads((RECORDED / name).read_text())

    async def fetch(self, url, method="GET", headers=None, body=None):
        self.urls.append(url)
        if self.down:
            raise ccxt.RequestTimeout("binance GET " + url + " request timeout")
        parts = urlsplit(url)
        q = dict(parse_qsl(parts.query))
        now_ms = int(self.clock.now() * 1000)
        if parts.path == "/api/v3/exchangeInfo":
            return self.load("exchangeInfo.json")
        if parts.path == "/api/v3/klines":
            start = int(q.get("startTime", 0))
            rows = [k for k in self.load(f"klines_{q['symbol']}.json") if k[0] >= start and k[0] <= now_ms]
            return rows[: int(q.get("limit", 500))]
        if parts.path == "/api/v3/aggTrades":
            start, end = int(q.get("startTime", 0)), int(q.get("endTime", 1 << 62))
            rows = [
                t for t in self.load(f"aggTrades_{q['symbol']}.json") if start <= t["T"] <= min(end, now_ms)
            ]
            return rows[: int(q.get("limit", 500))]
        raise ccxt.BadRequest(f"not recorded: {url}")


def recorded_source(clock, markets="BTC/USDT,ETH/USDT"):
    exchange = ccxt_async.binance(
        {"enableRateLimit": False, "options": {"fetchMarkets": {"types": ["spot"]}}}
    )
    recording = RecordedBinance(clock)
    exchange.fetch = recording.fetch
    source = CcxtSource("binance", parse_markets(markets), clock, poll_seconds=2.0, exchange=exchange)
    return source, recording


def recorded_bars(symbol: str) -> list[Bar]:
    rows = json.loads((RECORDED / f"klines_{symbol}.json").read_text())
    return [Bar(r[0] // 1000, *(float(x) for x in r[1:5])) for r in rows]


def test_named_markets_become_store_symbols_with_their_price_precision():
    async def main_():
        source, _ = recorded_source(FakeClock(END))
        await source.start()
        try:
            return await source.instruments()
        finally:
            await source.close()

    infos = asyncio.run(main_())
    assert [(i.symbol, i.name, i.category, i.precision) for i in infos] == [
        ("BTC-USDT", "BTC/USDT (binance)", "crypto", 2),
        ("ETH-USDT", "ETH/USDT (binance)", "crypto", 2),
    ]


def test_a_market_the_exchange_does_not_list_is_refused_at_start():
    async def main_():
        source, _ = recorded_source(FakeClock(END), "BTC/USDT,DOGE/XYZ")
        try:
            await source.start()
        finally:
            await source.close()

    with pytest.raises(BadRequest, match="binance has no market DOGE/XYZ"):
        asyncio.run(main_())


def test_history_is_the_recorded_closed_minutes():
    # given the recording, 30 s into the last recorded minute
    clock = FakeClock(END - 30)

    async def main_():
        source, recording = recorded_source(clock)
        await source.start()
        try:
            older = await source.history("BTC-USDT", older_than=T0 + 100 * 60, minutes=30)
            newest = await source.history("BTC-USDT", older_than=END + 600, minutes=5)
            return older, newest, recording.urls
        finally:
            await source.close()

    older, newest, urls = asyncio.run(main_())
    recorded = recorded_bars("BTCUSDT")
    # then a page is exactly the recorded bars before `older_than`
    assert older == recorded[70:100]
    # and the minute still forming is not history yet
    assert newest == recorded[-6:-1] and newest[-1].time == END - 120
    assert any("/api/v3/klines?interval=1m" in u and "symbol=BTCUSDT" in u for u in urls)


def test_watch_streams_each_trade_once_as_a_tick_after_linked():
    # given the source watching BTC-USDT from 10 minutes before the end of the recording
    clock = FakeClock(END - 600)

    async def main_():
        source, _ = recorded_source(clock)
        await source.start()
        await source.watch("BTC-USDT")
        while clock.now() < END:  # polls every 2 s of the fake clock
            await asyncio.sleep(0)
        await source.close()
        events = []
        while not source.events.empty():
            events.append(source.events.get_nowait())
        return events

    events = asyncio.run(main_())
    trades = json.loads((RECORDED / "aggTrades_BTCUSDT.json").read_text())
    # then Linked comes first, then every recorded trade since the watch, once, in time order
    assert isinstance(events[0], Linked) and events[0].symbol == "BTC-USDT"
    ticks = events[1:]
    assert all(isinstance(e, Tick) for e in ticks)
    expected = [
        (float(t["p"]), t["T"]) for t in trades if t["T"] >= (END - 600) * 1000 and t["T"] <= END * 1000
    ]
    assert [(t.price, t.timestamp_ms) for t in ticks] == expected and len(expected) > 40


def test_an_outage_unlinks_and_the_next_good_poll_links_again():
    clock = FakeClock(END - 300)

    async def main_():
        source, recording = recorded_source(clock)
        await source.start()
        await source.watch("BTC-USDT")
        while clock.now() < END - 200:
            await asyncio.sleep(0)
        recording.down = True  # the exchange stops answering for a minute
        while clock.now() < END - 140:
            await asyncio.sleep(0)
        recording.down = False
        while clock.now() < END:
            await asyncio.sleep(0)
        await source.close()
        events = []
        while not source.events.empty():
            events.append(source.events.get_nowait())
        return events, source.status

    events, status = asyncio.run(main_())
    kinds = [type(e).__name__ for e in events if not isinstance(e, Tick)]
    # then the stream was Linked, Unlinked by the outage, and Linked again (the collector repairs the gap)
    assert kinds == ["Linked", "Unlinked", "Linked"]
    unlinked = next(e for e in events if isinstance(e, Unlinked))
    assert "RequestTimeout" in unlinked.reason and status.last_error == "upstream_unavailable"
    # and no trade was lost or repeated across the outage
    ticks = [e.timestamp_ms for e in events if isinstance(e, Tick)]
    assert ticks == sorted(set(ticks))


def test_history_lands_in_the_same_1m_store(aws_env):
    # given the candle store (moto) and the source on the recording
    from tradowix_bot.server.authn import OPEN
    from tradowix_bot.server.market import MarketData
    from tradowix_bot.server.state import StateStore
    from tradowix_bot.server.store import CandleStore

    clock = FakeClock(END)
    store = CandleStore(aws_env["CandlesBucket"])

    async def main_():
        source, _ = recorded_source(clock)
        await source.start()
        try:
            return await archive(source, StoreTarget(store), ["BTC-USDT"], T0, END)
        finally:
            await source.close()

    # when the owner archives the market's history
    results = asyncio.run(main_())
    # then the store holds the recorded minutes, served by the partner API like any symbol
    assert results[0].error is None
    assert [tuple(b[:5]) for b in store.read("BTC-USDT", T0)] == [tuple(b) for b in recorded_bars("BTCUSDT")]
    answer = MarketData(store, StateStore(aws_env["StateTable"]), clock=clock.now).candles(
        OPEN, "BTC-USDT", 300, limit=2
    )
    assert answer["count"] == 2 and answer["candles"][-1]["time"] == END - 300


@pytest.mark.parametrize(
    "spec, expected",
    [
        ("BTC/USDT", {"BTC-USDT": "BTC/USDT"}),
        ("BTC/USDT, ETH/USDT=ETHUSDT", {"BTC-USDT": "BTC/USDT", "ETHUSDT": "ETH/USDT"}),
        ("BTC/USDT:USDT", {"BTC-USDT-USDT": "BTC/USDT:USDT"}),
    ],
)
def test_market_names_map_to_store_symbols(spec, expected):
    assert parse_markets(spec) == expected


@pytest.mark.parametrize(
    "spec, message",
    [
        ("", "name at least one market"),
        ("BTC/USDT=bad name", "store symbol 'bad name'"),
        ("BTC/USDT=X,ETH/USDT=X", "both map to 'X'"),
    ],
)
def test_unusable_market_lists_are_clear_errors(spec, message):
    with pytest.raises(BadRequest, match=message):
        parse_markets(spec)


def test_collect_with_the_ccxt_source_needs_exchange_and_markets(capsys, monkeypatch):
    for name, value in (("KEYS_TABLE", "k"), ("STATE_TABLE", "s"), ("CANDLES_BUCKET", "b")):
        monkeypatch.setenv(
            name, value
        )  # a target without a local stack (all three: no defaults); nothing is written
    with pytest.raises(SystemExit, match="--source ccxt needs --exchange and --markets"):
        main(["collect", "--source", "ccxt", "--exchange", "binance"])


def test_a_failing_exchange_at_start_is_a_source_error_and_releases_its_session():
    closed = []

    async def main_():
        source, recording = recorded_source(FakeClock(END))
        recording.down = True
        real_close = source._exchange.close

        async def close():
            closed.append(True)
            await real_close()

        source._exchange.close = close
        await source.start()  # the caller (archive) does not close a source whose start failed

    with pytest.raises(SourceError, match="binance: loading markets: RequestTimeout"):
        asyncio.run(main_())
    # ccxt's HTTP session is released (no "Unclosed client session" at exit)
    assert closed == [True]


class RecordingTimeClock(Clock):
    """Market time running `speed`x from `start` (inside the recording), for the collector."""

    def __init__(self, start: float, speed: float):
        super().__init__(speed)
        self.start, self.began = start, time.monotonic()

    def now(self) -> float:
        return self.start + (time.monotonic() - self.began) * self.speed


def minute_ohlc_of_trades(symbol: str) -> dict[int, tuple]:
    """Open = first trade of the minute, high, low, close = last: what ticks make."""
    out: dict[int, list] = {}
    for t in json.loads((RECORDED / f"aggTrades_{symbol}.json").read_text()):
        out.setdefault(t["T"] // 1000 // 60 * 60, []).append(float(t["p"]))
    return {m: (m, p[0], max(p), min(p), p[-1]) for m, p in out.items()}


def test_the_collector_stores_bars_built_from_the_exchanges_trades(aws_env):
    # given the collector on the ccxt source, 7 minutes before the recording ends, at 60x
    from tradowix_bot.collector import Collector
    from tradowix_bot.server.state import StateStore
    from tradowix_bot.server.store import CandleStore

    clock = RecordingTimeClock(END - 420, 60.0)
    store = CandleStore(aws_env["CandlesBucket"])
    source, _ = recorded_source(clock, "BTC/USDT")
    collector = Collector(
        source,
        store,
        StateStore(aws_env["StateTable"]),
        clock=clock,
        backfill_days=20 / 1440,
        lease_seconds=3.0,
        forming_interval=0.2,
        status_interval=0.5,
    )

    async def run():
        stop = asyncio.Event()
        task = asyncio.create_task(collector.run(stop))
        while clock.now() < END - 10:  # ~7 market minutes: ~7 s
            await asyncio.sleep(0.2)
        stop.set()
        await asyncio.wait_for(task, 20)

    asyncio.run(run())
    bars = {b[0]: tuple(b[:5]) for b in store.read("BTC-USDT", T0)}
    from_trades = minute_ohlc_of_trades("BTCUSDT")
    linked_minute = (END - 420) // 60 * 60
    # then the minutes before the link came from the exchange's 1m history (gap repair) ...
    history = {b.time: tuple(b) for b in recorded_bars("BTCUSDT")}
    repaired = [t for t in bars if t < linked_minute]
    assert repaired and all(bars[t] == history[t] for t in repaired)
    # ... and the minutes after it were built from its trades, one tick per trade (the minute of
    # the first trade after the link saw only part of its trades: that one comes from history)
    streamed = sorted(t for t in bars if t > linked_minute)
    assert len(streamed) >= 3, sorted(bars)
    assert bars[streamed[0]] in (from_trades[streamed[0]], history[streamed[0]])
    assert all(bars[t] == from_trades[t] for t in streamed[1:])
