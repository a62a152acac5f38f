#!/usr/bin/env python3
"""Collector benchmark: N symbols at ~1 tick/s each, time-compressed over a simulated span.

    .venv/bin/python tests/bench/bench_collector.py [--symbols 100] [--hours 24] [--speed 120]

The emulator (moto server) runs in a separate process, so the CPU figure is the
collector's own (tick validation, bar building, boto3 request building). Prints RSS at
start and end, CPU seconds per symbol-hour, S3 PUTs per symbol-hour, and ingest → visible
latency: closed bar (minute close → readable through MarketData.candles, the code behind
/api/candles) and forming bar (tick → forming record readable), p50/p99 in wall seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--symbols", type=int, default=100)
    ap.add_argument("--hours", type=float, default=24.0)
    ap.add_argument("--speed", type=float, default=120.0, help="simulated seconds per wall second")
    args = ap.parse_args()

    port = free_port()
    env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    moto = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    os.environ.update(env)
    os.environ["AWS_ENDPOINT_URL"] = f"http://127.0.0.1:{port}"
    try:
        return asyncio.run(run(args))
    finally:
        moto.terminate()
        moto.wait()


async def run(args) -> int:
    import boto3
    from tradowix_bot.collector import Clock, Collector
    from tradowix_bot.collector.synthetic import SyntheticSource
    from tradowix_bot.logs import get_logger
    from tradowix_bot.market import MarketData
    from tradowix_bot.state import StateStore
    from tradowix_bot.store import CandleStore
    from tradowix_bot.symbols import DEFAULT_SYMBOLS, SymbolInfo

    get_logger("collector").setLevel("WARNING")
    for _ in range(100):
        try:
            boto3.client("s3").create_bucket(Bucket="bench-candles")
            break
        except Exception:  # noqa: BLE001 - the emulator is still starting
            time.sleep(0.1)
    boto3.client("dynamodb").create_table(
        TableName="bench-state",
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
    )
    infos = tuple(
        SymbolInfo(f"S{i:03d}-{d.symbol}", d.name, d.category, d.precision, d.level, d.volatility)
        for i in range(args.symbols)
        for d in [DEFAULT_SYMBOLS[i % len(DEFAULT_SYMBOLS)]]
    )
    clock = Clock(args.speed)
    store = CandleStore("bench-candles", cache_entries=4 * args.symbols)
    state = StateStore("bench-state")
    reader = MarketData(CandleStore("bench-candles"), state, clock=clock.now)
    collector = Collector(
        SyntheticSource(clock, infos),
        store,
        state,
        symbols=[i.symbol for i in infos],
        clock=clock,
        backfill_days=0,
        lease_seconds=60 * args.speed,  # clock seconds: a minute of wall time whatever the speed
        status_interval=5,
    )

    probe = infos[0].symbol
    closed_at: dict[int, float] = {}
    closed_latency: list[float] = []
    forming_tick: dict[tuple, float] = {}
    forming_latency: list[float] = []
    ticks = {"n": 0}

    class Probe:
        def on_bar(self, symbol, bar, closed):
            ticks["n"] += 1
            if symbol != probe:
                return
            if closed:
                closed_at[bar[0]] = time.monotonic()
            else:
                forming_tick.setdefault(bar, time.monotonic())

    def written(symbol, bars):
        if symbol != probe:
            return
        for bar in bars:
            t0 = closed_at.pop(bar[0], None)
            if t0 is not None:
                answer = reader.candles(None, symbol, start=bar[0], end=bar[0] + 60)
                if answer["candles"] and answer["candles"][0]["close"] == bar[4]:
                    closed_latency.append(time.monotonic() - t0)

    def formed(bars):
        bar = bars.get(probe)
        if bar is None:
            return
        done = time.monotonic()
        for key in [k for k in forming_tick if k[0] <= bar[0]]:
            forming_latency.append(done - forming_tick.pop(key))

    collector.sinks.append(Probe())
    collector.writer.written_callbacks.append(written)
    collector.writer.forming_callbacks.append(formed)

    wall = args.hours * 3600 / args.speed
    print(
        f"bench: {args.symbols} symbols x {args.hours:g} h simulated at {args.speed:g}x = {wall:.0f} s wall",
        flush=True,
    )
    rss_start = rss_mb()
    cpu_start = resource.getrusage(resource.RUSAGE_SELF)
    stop = asyncio.Event()
    task = asyncio.create_task(collector.run(stop))
    started = time.monotonic()
    sim_start = clock.now()
    rss_samples = []
    while time.monotonic() - started < wall:
        await asyncio.sleep(min(10.0, wall / 10))
        rss_samples.append(rss_mb())
        print(
            f"  {100 * (time.monotonic() - started) / wall:5.1f}%  rss {rss_samples[-1]:.0f} MB  "
            f"puts {collector.writer.puts}  backlog {collector.writer.backlog}",
            flush=True,
        )
    sim_hours = (clock.now() - sim_start) / 3600
    stop.set()
    await task
    cpu_end = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (cpu_end.ru_utime + cpu_end.ru_stime) - (cpu_start.ru_utime + cpu_start.ru_stime)
    symbol_hours = args.symbols * sim_hours
    print(
        f"simulated {sim_hours:.2f} h, {ticks['n']} bar updates (≈ ticks), writer failures {collector.writer.failures}"
    )
    print(
        f"RSS start {rss_start:.0f} MB, end {rss_mb():.0f} MB (samples {', '.join(f'{x:.0f}' for x in rss_samples)})"
    )
    print(f"CPU {cpu:.1f} s = {cpu / symbol_hours:.3f} CPU s per symbol-hour")
    print(
        f"S3 PUTs {collector.writer.puts} = {collector.writer.puts / symbol_hours:.1f} per symbol-hour (60 = one per minute)"
    )
    print(f"forming records written {collector.writer.forming_writes}")
    print(
        f"closed bar → readable: p50 {pct(closed_latency, 0.5):.3f} s  p99 {pct(closed_latency, 0.99):.3f} s  (n={len(closed_latency)})"
    )
    print(
        f"tick → forming readable: p50 {pct(forming_latency, 0.5):.3f} s  p99 {pct(forming_latency, 0.99):.3f} s  (n={len(forming_latency)})"
    )
    if closed_latency:
        print(f"closed mean {statistics.mean(closed_latency):.3f} s")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT / "tests"))
    sys.exit(main())
