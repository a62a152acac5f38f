#!/usr/bin/env python3
"""Benchmark of the partner client's range helper: 30 days x 7 symbols of 1m bars fetched with
`ChartApiClient.iter_candle_pages` (sync) and `AsyncChartApiClient.iter_candles`. A script, not
a test:

    .venv/bin/python tests/bench/bench_client_paging.py [--days 30] [--page-sizes 5000,10000]

The partner API (the real FastAPI app, gzip middleware included) runs under uvicorn on
127.0.0.1 in this process, on in-process moto S3 seeded with the synthetic market; the client
talks real HTTP to it. Prints, per page size: pages, bars, seconds, bars per second, and checks
that every stored bar came back exactly once (a fetch that loses data is not a result).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "functions" / "api"))
for name, value in {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench"}.items():
    os.environ.setdefault(name, value)
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")
os.environ.pop("AWS_ENDPOINT_URL", None)

SYMBOLS = ["BTCUSD-OTC", "ETHUSD-OTC", "EURUSD-OTC", "GBPUSD-OTC", "USDJPY-OTC", "XAUUSD-OTC", "AAPL-OTC"]


def seed(days: int) -> tuple[int, int, int]:
    """The template's resources in moto, `days` of 1m bars per symbol. Returns (start, end, bars)."""
    import boto3
    from tradowix_bot.collector.synthetic_market import SyntheticMarket
    from tradowix_bot.server.store import CandleStore
    from tradowix_local.emulator import create_resources
    from tradowix_local.template import Template

    class InProcess:
        @staticmethod
        def client(service):
            return boto3.client(service)

    template = Template()
    names = create_resources(InProcess(), template)
    env = template.functions()["ApiFunction"].environment
    os.environ.update({k: v for k, v in env.items() if k != "POWERTOOLS_LOG_LEVEL"})
    end = int(time.time()) // 86400 * 86400  # whole past days: no forming bar in the range
    start = end - days * 86400
    store, market, total = CandleStore(names["CandlesBucket"]), SyntheticMarket(), 0
    for symbol in SYMBOLS:
        bars = market.bars(symbol, start, end)
        store.write(symbol, bars)
        total += len(bars)
        print(f"  seeded {symbol}: {len(bars)} bars", file=sys.stderr, flush=True)
    return start, end, total


def serve_api() -> tuple[str, object]:
    import uvicorn
    from partner_api import context
    from partner_api.app import app

    context.reset()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    return f"http://127.0.0.1:{port}", server


def fetch_sync(url: str, start: int, end: int, page_size: int) -> tuple[int, dict[str, list[int]], float]:
    from tradowix_bot.client.chart_client import ChartApiClient

    pages, times = 0, {s: [] for s in SYMBOLS}
    began = time.perf_counter()
    with ChartApiClient(url, None, timeout=120) as client:
        for page in client.iter_candle_pages(SYMBOLS, start, end, page_size=page_size):
            pages += 1
            times[page["symbol"]].extend(c["time"] for c in page["candles"])
    return pages, times, time.perf_counter() - began


def fetch_async(url: str, start: int, end: int, page_size: int) -> tuple[dict[str, list[int]], float]:
    from tradowix_bot.client.chart_client import AsyncChartApiClient

    async def main():
        times = {s: [] for s in SYMBOLS}
        async with AsyncChartApiClient(url, None, timeout=120) as client:
            async for symbol, bar in client.iter_candles(SYMBOLS, start, end, page_size=page_size):
                times[symbol].append(bar["time"])
        return times

    began = time.perf_counter()
    times = asyncio.run(main())
    return times, time.perf_counter() - began


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--page-sizes", default="5000,10000")
    args = parser.parse_args()
    from moto import mock_aws
    from tradowix_bot.server import aws

    with mock_aws():
        aws.reset()
        print(f"seeding {args.days} days x {len(SYMBOLS)} symbols ...", file=sys.stderr, flush=True)
        start, end, total = seed(args.days)
        url, server = serve_api()
        rows = []
        try:
            for size in (int(s) for s in args.page_sizes.split(",")):
                pages, times, seconds = fetch_sync(url, start, end, size)
                whole = all(t == list(range(start, end, 60)) for t in times.values())
                rows.append(
                    ("sync iter_candle_pages", size, pages, sum(map(len, times.values())), seconds, whole)
                )
                times, seconds = fetch_async(url, start, end, size)
                whole = all(t == list(range(start, end, 60)) for t in times.values())
                rows.append(
                    ("async iter_candles", size, pages, sum(map(len, times.values())), seconds, whole)
                )
        finally:
            server.should_exit = True
    print(f"\n{args.days} days x {len(SYMBOLS)} symbols = {total:,} stored 1m bars, real HTTP on 127.0.0.1")
    print(f"{'helper':24} {'page_size':>9} {'pages':>6} {'bars':>9} {'seconds':>8} {'bars/s':>9}  complete")
    for helper, size, pages, bars, seconds, whole in rows:
        print(
            f"{helper:24} {size:>9} {pages:>6} {bars:>9,} {seconds:>8.2f} {bars / seconds:>9,.0f}  "
            f"{'yes' if whole and bars == total else 'NO: data lost or repeated'}"
        )
    return 0 if all(r[5] and r[3] == total for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
