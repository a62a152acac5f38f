"""Given the session's local stack (a seeded week of every symbol), when the client's range
helper reads it (issue 13 item 2), sync and async, then every bar comes back whole across many
pages, by following the server's own `next` links."""

from __future__ import annotations

import asyncio

import pytest
from tradowix_bot.client.chart_client import AsyncChartApiClient, ChartApiClient

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def key(local_stack):
    key_id, raw = local_stack.create_key("client-paging")
    yield raw
    local_stack.delete_key(key_id, raw)


def test_every_symbols_history_comes_back_whole_across_pages(local_stack, key):
    with ChartApiClient(local_stack.api_url, key) as client:
        symbols = [s["symbol"] for s in client.symbols()["symbols"]]
        first = client.candles(symbols[0], timeframe=60, limit=1)
        # given a closed range: the stored history up to the minute before the newest bar
        end = first["candles"][0]["time"] - 60
        pages = list(client.iter_candle_pages(symbols, 0, end, page_size=2000))
        got = {s: [] for s in symbols}
        for symbol, bar in client.iter_candles(symbols, 0, end, page_size=2000):
            got[symbol].append(bar["time"])
        # and the same ranges read in one answer each (no page size: the whole range)
        whole = {
            s: [b["time"] for b in client.candles(s, timeframe=60, start=0, end=end)["candles"]]
            for s in symbols
        }
    # then the server paged (several pages per symbol, the last without more) ...
    assert len(pages) > 2 * len(symbols)
    assert all(p["has_more"] == (p["next"] is not None) for p in pages)
    last_pages = [p for p in pages if not p["has_more"]]
    assert [p["symbol"] for p in last_pages] == symbols
    # ... and the helper handed out every bar of every symbol once, in order
    for symbol in symbols:
        assert got[symbol] == whole[symbol] and len(got[symbol]) > 5 * 1440
    assert pages[0]["available_from"] == whole[symbols[0]][0]


def test_the_async_helper_reads_the_same_bars(local_stack, key):
    async def main():
        async with AsyncChartApiClient(local_stack.api_url, key) as client:
            newest = (await client.candles("EURUSD-OTC", limit=1))["candles"][0]["time"]
            start = newest - 2 * 86400
            bars = [b async for _, b in client.iter_candles("EURUSD-OTC", start, newest, page_size=500)]
            whole = await client.candles("EURUSD-OTC", start=start, end=newest)
            return bars, whole["candles"]

    bars, whole = asyncio.run(main())
    assert [b["time"] for b in bars] == [b["time"] for b in whole] and len(bars) > 2000
