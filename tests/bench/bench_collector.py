#!/usr/bin/env python3
"""Collector benchmark: the real `collect` process, at real time, with the live fan-out on.

    .venv/bin/python tests/bench/bench_collector.py [--symbols 30] [--minutes 5] [--windows 3]
        [--speed 1] [--fanout on|off] [--subscribers 0] [--profile FILE.svg]

What runs (all on this machine):
- moto's server in its own process (the data services);
- a counting proxy in front of it (this process): the collector's every S3 and DynamoDB
  request goes through it, so the bench counts requests and DynamoDB write/read units from the
  item sizes the collector actually sends and gets back (DynamoDB's own rules: 1 write unit
  per started KB of the item, 1 read unit per started 4 KB, half for eventually consistent
  reads), and prices them with the README's list prices;
- the stand-in Tradowix upstream (tests/upstream_standin.py, this process): one WebSocket
  per symbol, a tick about every second;
- a stand-in `@connections` endpoint (this process) for the live fan-out, and optionally
  `--subscribers` subscriptions per symbol in the connections table;
- `python -m tradowix_bot.cli collect --source tradowix` as a child process: the collector
  exactly as the container runs it (fan-out on: WS_MANAGEMENT_ENDPOINT is set).

After a warm-up (the backfill and the repair of the first, partial minute done), it measures
`--windows` windows of `--minutes` each and prints per window: the collector process's CPU seconds (user + system,
all threads, from /proc) per symbol-hour, with the machine's load average; the requests and
units per symbol-month and their price; how long after a tick a reader sees it in the forming
bar (the API's read path, polled every 0.1 s: up to 0.1 s of the figure is the polling, up to
0.2 s the stand-in's sending cadence); and how long after its minute a closed bar is in S3.

`--speed` other than 1 compresses market time (as the old in-process bench did): every
per-second cost then shrinks by that factor, so only speed 1 gives the real-time CPU figure.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import math
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "local"))

# us-east-1 list prices, as in the README's cost table
PRICE_S3_PUT = 5.0 / 1e6  # PUT, COPY, POST, LIST
PRICE_S3_GET = 0.4 / 1e6
PRICE_WRU = 0.625 / 1e6
PRICE_RRU = 0.125 / 1e6
PRICE_S3_GB_MONTH = 0.023
MONTH = 30 * 24 * 3600
# Issue 16's goals: real-time collector CPU, and AWS cost (ingest + storage) per symbol-month.
GOAL_CPU_PER_SYMBOL_HOUR = 3.0
GOAL_DOLLARS_PER_SYMBOL_MONTH = 1.0
TICKS = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def process_cpu(pid: int) -> float:
    """User + system CPU seconds of a process (all its threads) so far."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def process_rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


# -- DynamoDB item sizes (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/CapacityUnitCalculations.html)
def _number_size(text: str) -> int:
    digits = Decimal(text).normalize().as_tuple().digits
    return math.ceil(len(digits) / 2) + 1


def attr_size(value: dict) -> int:
    ((kind, v),) = value.items()
    if kind == "S":
        return len(v.encode())
    if kind == "N":
        return _number_size(v)
    if kind == "B":
        return len(v) * 3 // 4
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "L":
        return 3 + sum(attr_size(x) + 1 for x in v)
    if kind == "M":
        return 3 + sum(len(k.encode()) + attr_size(x) + 1 for k, x in v.items())
    if kind in ("SS", "NS", "BS"):
        return sum(attr_size({kind[0]: x}) for x in v)
    return 0


def item_size(item: dict) -> int:
    return sum(len(name.encode()) + attr_size(value) for name, value in item.items())


class Tally:
    """What the collector asked of S3 and DynamoDB (counted by the proxy)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.reset()
        self.sizes: dict[tuple, int] = {}  # (table, key) → last size written (deletes and updates cost it)

    def reset(self):
        with getattr(self, "lock", threading.Lock()):
            self.requests: Counter = Counter()
            self.wru: Counter = Counter()
            self.rru: Counter = Counter()
            self.s3_put_bytes = 0
            self.errors: Counter = Counter()

    def key(self, table: str, item: dict) -> tuple:
        return (
            table,
            json.dumps(
                {
                    k: item[k]
                    for k in sorted(item)
                    if k in ("pk", "sk", "connection_id", "key_hash", "key_id")
                },
                sort_keys=True,
            ),
        )

    def dynamo(self, op: str, body: dict, answer: dict, status: int) -> None:
        with self.lock:
            self.requests[f"DynamoDB {op}"] += 1
            if status >= 400:
                kind = str(answer.get("__type", "")).rsplit("#", 1)[-1]
                self.errors[f"{op} {kind}"] += 1
            table = body.get("TableName", "")
            if op == "PutItem":
                size = item_size(body["Item"])
                self.wru[op] += math.ceil(max(size, self.sizes.get(self.key(table, body["Item"]), 0)) / 1024)
                self.sizes[self.key(table, body["Item"])] = size
            elif op == "UpdateItem":  # billed on the larger of the item before and after
                size = self.sizes.get(self.key(table, body["Key"]), 0)
                self.wru[op] += max(1, math.ceil(size / 1024))
            elif op == "DeleteItem":
                self.wru[op] += max(1, math.ceil(self.sizes.pop(self.key(table, body["Key"]), 0) / 1024))
            elif op == "BatchWriteItem":
                for name, requests in body.get("RequestItems", {}).items():
                    for r in requests:
                        if "PutRequest" in r:
                            item = r["PutRequest"]["Item"]
                            size = item_size(item)
                            self.wru["BatchWriteItem put"] += max(1, math.ceil(size / 1024))
                            self.sizes[self.key(name, item)] = size
                        else:
                            gone = self.sizes.pop(self.key(name, r["DeleteRequest"]["Key"]), 0)
                            self.wru["BatchWriteItem delete"] += max(1, math.ceil(gone / 1024))
            elif op == "GetItem":  # billed on the whole item, whatever the projection
                factor = 1 if body.get("ConsistentRead") else 0.5
                size = max(
                    item_size(answer.get("Item") or {}), self.sizes.get(self.key(table, body["Key"]), 0)
                )
                self.rru[op] += factor * max(1, math.ceil(size / 4096))
            elif op in ("Query", "Scan"):
                factor = 1 if body.get("ConsistentRead") else 0.5
                size = sum(item_size(i) for i in answer.get("Items", []))
                self.rru[op] += factor * max(1, math.ceil(size / 4096))

    def s3(self, method: str, path: str, query: str, size: int) -> None:
        with self.lock:
            if method == "PUT":
                self.requests["S3 PUT"] += 1
                self.s3_put_bytes += size
            elif method == "GET" and ("list-type" in query or path.count("/") <= 1):
                self.requests["S3 LIST"] += 1
            elif method in ("GET", "HEAD"):
                self.requests[f"S3 {method}"] += 1
            else:
                self.requests[f"S3 {method}"] += 1


class Bench:
    def __init__(self, args):
        self.args = args
        self.tally = Tally()
        self.closed_latency: list[float] = []
        self.forming_latency: list[float] = []
        self.forming_unseen = 0
        self.posts = Counter()
        self.loop = asyncio.new_event_loop()
        self.measuring = False

    # -- the proxy and the @connections stand-in (aiohttp, on this process's loop thread) -----
    async def start_servers(self, moto_url: str) -> tuple[str, str]:
        import aiohttp
        from aiohttp import web

        self.session = aiohttp.ClientSession(auto_decompress=False)
        probe_prefix = f"/{self.bucket}/candles/1m/{self.probe}/"

        async def proxy(request: web.Request) -> web.Response:
            body = await request.read()
            headers = {
                k: v for k, v in request.headers.items() if k.lower() not in ("host", "content-length")
            }
            async with self.session.request(
                request.method, moto_url + request.path_qs, data=body, headers=headers
            ) as answer:
                data = await answer.read()
                out_headers = {
                    k: v
                    for k, v in answer.headers.items()
                    if k.lower()
                    not in ("content-length", "transfer-encoding", "connection", "content-encoding")
                }
                if "content-encoding" in answer.headers:
                    out_headers["Content-Encoding"] = answer.headers["content-encoding"]
                status = answer.status
            now = self.clock.now()
            target = request.headers.get("X-Amz-Target", "")
            if target.endswith(".UpdateItem") and status < 300:
                await self.learn_size(json.loads(body))
            if self.measuring:
                if target.startswith("DynamoDB_"):
                    try:
                        reply = json.loads(data or b"{}")
                    except ValueError:
                        reply = {}
                    self.tally.dynamo(target.split(".", 1)[1], json.loads(body or b"{}"), reply, status)
                else:
                    self.tally.s3(request.method, request.path, request.query_string, len(body))
            if request.method == "PUT" and request.path.startswith(probe_prefix) and status < 300:
                self.on_probe_put(body, now)
            return web.Response(status=status, body=data, headers=out_headers)

        async def connections(request: web.Request) -> web.Response:
            self.posts[request.method] += 1
            await request.read()
            return web.Response(status=200, text="{}")

        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/live/@connections/{cid}", connections)
        app.router.add_route("*", "/{tail:.*}", proxy)
        # The raw bodies: S3 day objects are sent gzip'd (Content-Encoding: gzip) and must reach moto so.
        runner = web.AppRunner(app, access_log=None, auto_decompress=False)
        await runner.setup()
        port = free_port()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        self.runner = runner
        return f"http://127.0.0.1:{port}", f"http://127.0.0.1:{port}/live"

    async def learn_size(self, request: dict) -> None:
        """An UpdateItem is billed on the whole item's size after it: read it back (not counted)."""
        import boto3

        client = self._ddb = getattr(self, "_ddb", None) or boto3.client("dynamodb")
        answer = await asyncio.get_running_loop().run_in_executor(
            None, lambda: client.get_item(TableName=request["TableName"], Key=request["Key"])
        )
        with self.tally.lock:
            self.tally.sizes[self.tally.key(request["TableName"], request["Key"])] = item_size(
                answer.get("Item") or {}
            )

    def on_probe_put(self, body: bytes, now: float) -> None:
        try:
            bars = json.loads(gzip.decompress(body))["bars"]
        except (OSError, ValueError, KeyError):
            return
        if not bars:
            return
        t = int(bars[-1][0])
        if t not in self.closed_seen:
            self.closed_seen.add(t)
            if self.measuring and t > self.measure_from:
                self.closed_latency.append(now - (t + 60))

    # -- the forming bar as a reader sees it ---------------------------------------------------
    def poll_forming(self, stop: threading.Event) -> None:
        from tradowix_bot.server.state import StateStore

        state = StateStore(self.names["StateTable"])
        counted: dict[int, int] = {}  # minute → ticks already timed
        while not stop.wait(0.1):
            now = self.clock.now()
            try:
                bar = state.forming_bar(self.probe, now)
            except Exception:  # noqa: BLE001 - the emulator is busy: try again
                continue
            if bar is None or len(bar) < 6 or not self.measuring or bar[0] <= self.measure_from:
                continue
            minute, volume = int(bar[0]), int(bar[5])
            ticks = self.upstream.market.minute_ticks(self.probe, minute)
            done = counted.get(minute, 0)
            for ts, _ in ticks[done:volume]:
                self.forming_latency.append(now - ts)
            counted[minute] = max(done, volume)
            for old in [m for m in counted if m < minute]:
                self.forming_unseen += len(self.upstream.market.minute_ticks(self.probe, old)) - counted.pop(
                    old
                )

    # -- the run ------------------------------------------------------------------------------------
    def run(self) -> int:
        moto_port = free_port()
        env = {
            **os.environ,
            "AWS_ACCESS_KEY_ID": "bench",
            "AWS_SECRET_ACCESS_KEY": "bench",
            "AWS_DEFAULT_REGION": "us-east-1",
        }
        env.pop("AWS_PROFILE", None)
        moto = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(moto_port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        os.environ.update(
            {k: env[k] for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION")}
        )
        moto_url = f"http://127.0.0.1:{moto_port}"
        os.environ["AWS_ENDPOINT_URL"] = moto_url
        collector = None
        upstream = None
        loop_thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        loop_thread.start()
        stop_polling = threading.Event()
        try:
            collector, upstream = self._run(moto_url, stop_polling)
            return 0
        finally:
            stop_polling.set()
            if collector is not None and collector.poll() is None:
                collector.send_signal(signal.SIGTERM)
                try:
                    collector.wait(30)
                except subprocess.TimeoutExpired:
                    collector.kill()
                    collector.wait()
            if upstream is not None:
                upstream.stop()
            moto.terminate()
            moto.wait()

    def _run(self, moto_url: str, stop_polling: threading.Event):
        import boto3
        from tradowix_bot.collector.clock import Clock
        from tradowix_bot.symbols import DEFAULT_SYMBOLS, SymbolInfo
        from tradowix_local.emulator import Emulator, create_resources
        from tradowix_local.template import Template
        from upstream_standin import StandinUpstream

        args = self.args
        for _ in range(200):
            try:
                boto3.client("s3").list_buckets()
                break
            except Exception:  # noqa: BLE001 - the emulator is still starting
                time.sleep(0.1)
        self.names = create_resources(Emulator(moto_url), Template())
        self.bucket = self.names["CandlesBucket"]
        infos = tuple(
            SymbolInfo(f"S{i:03d}-{d.symbol}", d.name, d.category, d.precision, d.level, d.volatility)
            for i in range(args.symbols)
            for d in [DEFAULT_SYMBOLS[i % len(DEFAULT_SYMBOLS)]]
        )
        symbols = [i.symbol for i in infos]
        self.probe = symbols[0]
        self.closed_seen: set[int] = set()
        self.measure_from = float("inf")
        self.clock = Clock(args.speed)
        upstream = self.upstream = StandinUpstream(self.clock, symbols=infos).start()
        proxy_url, ws_endpoint = asyncio.run_coroutine_threadsafe(
            self.start_servers(moto_url), self.loop
        ).result(30)
        if args.subscribers:
            self._subscribe(symbols, args.subscribers)

        env = {
            **os.environ,
            "AWS_ENDPOINT_URL": proxy_url,
            "STATE_TABLE": self.names["StateTable"],
            "KEYS_TABLE": self.names["KeysTable"],
            "CANDLES_BUCKET": self.bucket,
            "CONNECTIONS_TABLE": self.names["ConnectionsTable"],
            "TRADOWIX_CLOCK_SPEED": str(args.speed),
            "TRADOWIX_CLOCK_ANCHOR": str(self.clock.anchor),
            "TRADOWIX_DATA_DIR": str(ROOT / "test-artifacts" / "bench-collector"),
            "LOG_LEVEL": "WARNING",
        }
        env.pop("TRADOWIX_SESSION_TOKEN", None)
        if args.fanout == "on":
            env["WS_MANAGEMENT_ENDPOINT"] = ws_endpoint
            env.pop("TRADOWIX_LIVE_FANOUT", None)
        else:
            env["TRADOWIX_LIVE_FANOUT"] = "off"
        cmd = [
            sys.executable, "-m", "tradowix_bot.cli", "collect", "--source", "tradowix",
            "--url", upstream.url, "--token", "good-token", "--symbols", ",".join(symbols),
            "--owner", "bench", "--backfill-days", "0.01", "--no-trim",
        ]  # fmt: skip
        log_path = ROOT / "test-artifacts" / "bench-collector.log"
        log_path.parent.mkdir(exist_ok=True)
        collector = subprocess.Popen(cmd, env=env, stdout=log_path.open("w"), stderr=subprocess.STDOUT)
        print(
            f"bench: collector process, {args.symbols} symbols, speed {args.speed:g}x, "
            f"fan-out {args.fanout}, {args.subscribers} subscriber(s) per symbol; "
            f"{args.windows} window(s) of {args.minutes:g} min after a {args.warmup:g} s warm-up",
            flush=True,
        )
        poller = threading.Thread(target=self.poll_forming, args=(stop_polling,), daemon=True)
        poller.start()
        time.sleep(args.warmup / args.speed)
        if collector.poll() is not None:
            raise SystemExit(f"collector exited early:\n{log_path.read_text()[-3000:]}")
        profiler = None
        if args.profile:
            seconds = int(args.windows * args.minutes * 60 / args.speed)
            profiler = subprocess.Popen(
                [str(Path(sys.executable).parent / "py-spy"), "record", "-p", str(collector.pid), "-d", str(seconds),
                 "-o", args.profile, "-r", "50", "--idle" if args.idle else "--gil",
                 "-f", "raw" if args.profile.endswith(".txt") else "flamegraph"],
                stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
            )  # fmt: skip
        results = []
        for window in range(args.windows):
            results.append(self._window(collector, window))
        if profiler is not None:
            profiler.wait()
            print(f"profile: {args.profile}")
        if len(results) > 1:
            cpus = [r["cpu_per_symbol_hour"] for r in results]
            print(
                f"CPU s per symbol-hour over {len(cpus)} windows: {', '.join(f'{c:.2f}' for c in cpus)} "
                f"(min {min(cpus):.2f}, max {max(cpus):.2f}; speed {args.speed:g}x, fan-out {args.fanout}; "
                f"goal ≤ {GOAL_CPU_PER_SYMBOL_HOUR:g} at speed 1)"
            )
        return collector, upstream

    def _subscribe(self, symbols: list[str], per_symbol: int) -> None:
        from tradowix_bot.server.live_connections import ConnectionStore

        store = ConnectionStore(self.names["ConnectionsTable"])
        for n in range(per_symbol):
            connection = store.add_connection(f"bench-{n}", None)
            for symbol in symbols[:50]:  # 50 subscriptions per connection at most
                store.subscribe(connection, symbol, 60)
        if len(symbols) > 50:
            print("  (subscribers: the first 50 symbols only)")

    def _window(self, collector: subprocess.Popen, window: int) -> dict:
        args = self.args
        self.tally.reset()
        self.closed_latency.clear()
        self.forming_latency.clear()
        self.forming_unseen = 0
        self.posts.clear()
        market_start = self.clock.now()
        self.measure_from = market_start
        load_start = os.getloadavg()
        cpu_start = process_cpu(collector.pid)
        self.measuring = True
        time.sleep(args.minutes * 60 / args.speed)
        self.measuring = False
        cpu = process_cpu(collector.pid) - cpu_start
        market_seconds = self.clock.now() - market_start
        load_end = os.getloadavg()
        if collector.poll() is not None:
            raise SystemExit("collector exited during the run (see test-artifacts/bench-collector.log)")
        symbol_hours = args.symbols * market_seconds / 3600
        to_month = MONTH / market_seconds / args.symbols  # per symbol-month
        cpu_per_symbol_hour = cpu / symbol_hours
        print(
            f"\nwindow {window + 1}: {market_seconds / 60:.1f} market min ({market_seconds / args.speed:.0f} s wall)"
        )
        print(
            f"  load average {load_start[0]:.1f} → {load_end[0]:.1f} (1 min)   collector RSS "
            f"{process_rss_mb(collector.pid):.0f} MB"
        )
        print(
            f"  CPU {cpu:.1f} s = {cpu_per_symbol_hour:.2f} CPU s per symbol-hour "
            f"(speed {args.speed:g}x, fan-out {args.fanout}, {args.symbols} symbols, "
            f"{args.subscribers} subscriber(s) per symbol; goal ≤ {GOAL_CPU_PER_SYMBOL_HOUR:g} at speed 1: "
            + (
                ("met" if cpu_per_symbol_hour <= GOAL_CPU_PER_SYMBOL_HOUR else "MISSED")
                if args.speed == 1
                else "not judged (speed is not 1)"
            )
            + ")"
        )
        t = self.tally
        with t.lock:
            requests, wru, rru = dict(t.requests), dict(t.wru), dict(t.rru)
            put_bytes, errors = t.s3_put_bytes, dict(t.errors)
        print("  requests per symbol-month (measured):")
        for name, n in sorted(requests.items()):
            print(f"    {name:28s} {n * to_month:12,.0f}")
        wru_total = sum(wru.values()) * to_month
        rru_total = sum(rru.values()) * to_month
        for name, n in sorted(wru.items()):
            print(f"    write units {name:16s} {n * to_month:12,.0f}")
        for name, n in sorted(rru.items()):
            print(f"    read units  {name:16s} {n * to_month:12,.0f}")
        if errors:
            print(f"    errors: {errors}")
        s3_put = (requests.get("S3 PUT", 0) + requests.get("S3 LIST", 0)) * to_month
        s3_get = (requests.get("S3 GET", 0) + requests.get("S3 HEAD", 0)) * to_month
        # At rest: 3 days of bars (RETENTION_DAYS) of the size just written.
        puts = requests.get("S3 PUT", 0)
        storage_gb = 0.0
        if puts:
            bytes_per_put = put_bytes / puts
            storage_gb = 3 * bytes_per_put * 1.5 / 1e9  # today's object + yesterday's + older, ≈ 3 days
        cost = {
            "S3 PUT/LIST": s3_put * PRICE_S3_PUT,
            "S3 GET": s3_get * PRICE_S3_GET,
            "DynamoDB writes": wru_total * PRICE_WRU,
            "DynamoDB reads": rru_total * PRICE_RRU,
            "S3 storage": storage_gb * PRICE_S3_GB_MONTH,
        }
        print(
            "  AWS cost per symbol-month: "
            + ", ".join(f"{k} ${v:.3f}" for k, v in cost.items())
            + f" = ${sum(cost.values()):.3f}"
            + f" (goal ≤ ${GOAL_DOLLARS_PER_SYMBOL_MONTH:g}: "
            + ("met" if sum(cost.values()) <= GOAL_DOLLARS_PER_SYMBOL_MONTH else "MISSED")
            + ")"
        )
        print(
            f"  tick → forming bar seen by a reader: p50 {pct(self.forming_latency, 0.5):.2f} s, "
            f"p99 {pct(self.forming_latency, 0.99):.2f} s, max {max(self.forming_latency, default=float('nan')):.2f} s "
            f"(n={len(self.forming_latency)}; ticks never seen forming: {self.forming_unseen})"
        )
        print(
            f"  minute end → closed bar in S3: p50 {pct(self.closed_latency, 0.5):.2f} s, "
            f"p99 {pct(self.closed_latency, 0.99):.2f} s (n={len(self.closed_latency)})"
        )
        forming_key = t.key(self.names["StateTable"], {"pk": {"S": "forming"}, "sk": {"S": "bars"}})
        if forming_key in t.sizes:
            size = t.sizes[forming_key]
            print(
                f"  packed forming record: {size} bytes; a partner's read of a forming bar (one "
                f"consistent GetItem) = {max(1, math.ceil(size / 4096))} read unit(s)"
            )
        if self.posts:
            print(f"  @connections requests: {dict(self.posts)}")
        return {"cpu_per_symbol_hour": cpu_per_symbol_hour, "cost": sum(cost.values())}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--symbols", type=int, default=30)
    ap.add_argument("--minutes", type=float, default=5.0, help="market minutes per measured window")
    ap.add_argument("--windows", type=int, default=3, help="measured windows (repeated figures)")
    ap.add_argument(
        "--warmup", type=float, default=150.0, help="market seconds before measuring (past the first repairs)"
    )
    ap.add_argument("--speed", type=float, default=1.0, help="market seconds per wall second (1: real time)")
    ap.add_argument("--fanout", choices=("on", "off"), default="on")
    ap.add_argument("--subscribers", type=int, default=0, help="1m subscriptions per symbol")
    ap.add_argument(
        "--profile",
        help="record a py-spy profile of the collector (GIL holders) to this .svg (or .txt: raw stacks)",
    )
    ap.add_argument("--idle", action="store_true", help="with --profile: include idle threads")
    args = ap.parse_args()
    return Bench(args).run()


if __name__ == "__main__":
    sys.exit(main())
