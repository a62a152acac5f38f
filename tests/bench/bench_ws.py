"""Live fan-out on the local stack: bar published -> received by WebSocket clients.

    .venv/bin/python tests/bench/bench_ws.py [--subscribers 1,100,1000] [--rounds 20]

Starts its own local stack. Clients (plain `websockets`) run in this process; the publisher
(LivePublisher, the code the collector runs) runs in a child process and posts through the
stack's @connections endpoint, as it would on AWS. Prints, per subscriber count: latency
p50/p99 (publish call -> message received), messages/s the fan-out sustained, and the stack
process's memory per 1,000 connections. Then the figures behind "where fan-out runs".
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import websockets

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))
SYMBOL = "EURUSD-OTC"
TIMEFRAME = 3600  # small history per subscribe; the fan-out path is the same for any timeframe


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def publisher_process(info: dict, conn) -> None:
    """Child: owns a LivePublisher; publishes on request, answers (t0, t1, posted)."""
    os.environ["AWS_ENDPOINT_URL"] = info["endpoint_url"]
    os.environ.update(info["aws_env"])
    from tradowix_bot.live_connections import ConnectionStore
    from tradowix_bot.live_fanout import LivePublisher
    from tradowix_bot.live_poster import ConnectionPoster

    pub = LivePublisher(
        ConnectionStore(info["connections_table"]),
        ConnectionPoster(info["ws_management_endpoint"], concurrency=int(info.get("concurrency", 32))),
        None,
        throttle_seconds=0,  # every update goes out: we measure the post path, not the throttle
        # Refreshed on request only: the embedded moto needs ~2 s of the stack's CPU per query of
        # 1,000 subscribers (DynamoDB answers in milliseconds), which would starve the gateway.
        subscriber_refresh_seconds=3600,
    )
    while True:
        cmd = conn.recv()
        if cmd is None:
            break
        if cmd == "refresh":
            pub.subscriber_refresh_seconds = 0
            pub.refresh_subscribers()
            pub.subscriber_refresh_seconds = 3600
            conn.send(pub.known_subscriptions())
            continue
        minute, price = cmd
        posted_before = pub.stats.posted
        t0 = time.time()
        pub.on_bar(SYMBOL, (minute, price, price + 1, price - 1, price), False)
        t1 = time.time()
        conn.send((t0, t1, pub.stats.posted - posted_before, pub.stats.failed))
    pub.poster.close()


async def open_clients(ws_url: str, n: int, batch: int = 50) -> list:
    clients = []
    for start in range(0, n, batch):
        group = await asyncio.gather(
            *(
                websockets.connect(ws_url, max_size=None, ping_interval=None)
                for _ in range(min(batch, n - start))
            )
        )
        await asyncio.gather(
            *(
                ws.send(json.dumps({"type": "subscribe", "symbol": SYMBOL, "timeframe": TIMEFRAME}))
                for ws in group
            )
        )
        for ws in group:
            for _ in range(3):  # status, history, timing
                await ws.recv()
        clients.extend(group)
    return clients


async def measure(clients: list, parent_conn, rounds: int, step: int, pids: dict[str, int]) -> dict:
    latencies: list[float] = []
    posted = 0
    busy = 0.0
    base = int(time.time()) // TIMEFRAME * TIMEFRAME + (10 + step) * TIMEFRAME  # a fresh bar per step
    parent_conn.send("refresh")
    known = await asyncio.to_thread(parent_conn.recv)
    assert known in (0, len(clients)), f"publisher knows {known} of {len(clients)} subscribers"
    cpu_start: dict[str, float] = {}
    for r in range(-1, rounds):  # round -1 warms up (client creation, connection pool)
        if r == 0:
            cpu_start = {name: cpu_seconds(pid) for name, pid in pids.items()}
        arrivals: list[float] = []

        price = 100.0 + r

        async def wait_bar(ws, arrivals=arrivals, price=price):
            while True:  # this round's bar only (a late delivery of an earlier one is skipped)
                msg = json.loads(await ws.recv())
                if msg["type"] == "bar" and msg["candle"]["close"] == price:
                    arrivals.append(time.time())
                    return

        waiters = [asyncio.create_task(wait_bar(ws)) for ws in clients]
        parent_conn.send((base + 60 * (r + 1), price))  # minutes of one hourly bar
        t0, t1, n_posted, failed = await asyncio.to_thread(parent_conn.recv)
        # The warm-up round also waits for the publisher's subscriber list to include everyone.
        await asyncio.wait_for(asyncio.gather(*waiters), 60 if r >= 0 else 120)
        if r < 0:
            continue
        latencies.extend(a - t0 for a in arrivals)
        posted += n_posted
        busy += t1 - t0
    latencies.sort()
    cpu_ms = {
        name: 1000 * (cpu_seconds(pid) - cpu_start[name]) / max(posted, 1) for name, pid in pids.items()
    }
    return {
        "cpu_ms_per_message": cpu_ms,
        "p50_ms": 1000 * statistics.median(latencies),
        "p99_ms": 1000 * latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))],
        "max_ms": 1000 * latencies[-1],
        "messages_per_s": posted / busy if busy else 0.0,
        "messages": posted,
    }


def lambda_alternative(info: dict) -> dict:
    """What a stateless function triggered per update would pay on each invocation (locally)."""
    os.environ["AWS_ENDPOINT_URL"] = info["endpoint_url"]
    os.environ.update(info["aws_env"])
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-c", "import boto3, tradowix_bot.live_fanout, tradowix_bot.store"], check=True
    )
    cold_import = time.perf_counter() - started
    from tradowix_bot.live_connections import ConnectionStore
    from tradowix_bot.store import CandleStore

    store = ConnectionStore(info["connections_table"])
    candles = CandleStore(info["candles_bucket"])
    t = time.perf_counter()
    for _ in range(20):
        store.subscribers(SYMBOL)
    query = (time.perf_counter() - t) / 20
    now = int(time.time())
    t = time.perf_counter()
    for _ in range(5):
        CandleStore(info["candles_bucket"]).read(SYMBOL, now - now % 3600, now)
    reload = (time.perf_counter() - t) / 5
    del candles
    return {
        "cold_import_s": cold_import,
        "subscriber_query_ms": 1000 * query,
        "bucket_reload_ms": 1000 * reload,
    }


async def main_async(args, stack, info) -> None:
    ctx = mp.get_context("spawn")
    parent_conn, child_conn = ctx.Pipe()
    info = {**info, "concurrency": args.concurrency}
    child = ctx.Process(target=publisher_process, args=(info, child_conn), daemon=True)
    child.start()
    pid = json.loads((stack.data_dir / "local-stack.json").read_text())["pid"]
    pids = {"publisher": child.pid, "gateway": pid, "clients": os.getpid()}
    print(f"publisher concurrency {args.concurrency}; {args.rounds} bars per size; throttle off")
    print(
        f"{'subscribers':>11} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} {'msgs/s':>8}"
        "   CPU ms per message: publisher / gateway / clients"
    )
    clients: list = []
    memory: list[str] = []
    try:
        for step, n in enumerate(args.subscribers):
            added = n - len(clients)
            rss_before = rss_kb(pid)
            clients += await open_clients(stack.ws_url, added)
            rss_after = rss_kb(pid)
            r = await measure(clients, parent_conn, min(args.rounds, 58), step, pids)
            print(
                f"{n:>11} {r['p50_ms']:>8.1f} {r['p99_ms']:>8.1f} {r['max_ms']:>8.1f} {r['messages_per_s']:>8.0f}"
                "   " + " / ".join(f"{r['cpu_ms_per_message'][k]:.3f}" for k in pids)
            )
            if added >= 100:
                per_1000 = (rss_after - rss_before) * 1000 / added / 1024
                memory.append(
                    f"+{per_1000:.1f} MB per 1,000 connections (measured adding {added}; RSS {rss_after / 1024:.0f} MB)"
                )
    finally:
        parent_conn.send(None)
        child.join(10)
        await asyncio.gather(*(ws.close() for ws in clients), return_exceptions=True)
    for line in memory:
        print("stack process memory (gateway + emulator records):", line)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--subscribers", default="1,100,1000", type=lambda s: [int(x) for x in s.split(",")])
    parser.add_argument("--rounds", type=int, default=20, help="bars per size (at most 58: one hourly bar)")
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()
    from local_stacks import start_stack, stop_stack

    with tempfile.TemporaryDirectory() as tmp:
        # The stack's own collector does not fan out: the publisher measured here is the only one.
        stack = start_stack(Path(tmp) / "data", env={"TRADOWIX_LIVE_FANOUT": "off"})
        try:
            info = json.loads((stack.data_dir / "local-stack.json").read_text())
            # The clients' loop on uvloop: they stand for partners' machines, so they should take
            # as little of this machine's CPU as they can.
            from tradowix_bot.event_loop import new_event_loop

            with asyncio.Runner(loop_factory=new_event_loop) as runner:
                runner.run(main_async(args, stack, info))
            alt = lambda_alternative(info)
            print(
                "a function per update would add: cold start (import) "
                f"{alt['cold_import_s']:.2f} s, subscriber query {alt['subscriber_query_ms']:.1f} ms, "
                f"current-bucket reload {alt['bucket_reload_ms']:.1f} ms per invocation (local emulator)"
            )
        finally:
            stop_stack(stack)


if __name__ == "__main__":
    main()
