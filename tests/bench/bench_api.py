#!/usr/bin/env python3
"""Benchmark of the partner API on 10,080 1m bars (7 days) of one symbol. A script, not a test:

    .venv/bin/python tests/bench/bench_api.py [--runs 200] [--cold-runs 7]

Measured in ONE run and printed as a table, each with its target:
  - warm in-process /api/candles as real clients call it (the Lambda handler, API Gateway
    payload 2.0 events, moto in-process, a key in X-Api-Key so the key check and the per-key
    rate-limit counter run): no limit with and without `Accept-Encoding: gzip`, limit=4320 and
    timeframe=300 with gzip; p50/p99 against the floor measured in the same run (S3 GET of the
    stored bytes + gunzip + decode + JSON encode of the same answer);
  - UDF /udf/history p50 against /api/candles p50 for the same bars, in the same run;
  - resampling 10,080 bars to 5m: ours against pandas on the same data;
  - cold start: importing the API handler module against importing fastapi + mangum + boto3
    alone, in fresh subprocesses (medians), and proof that no AWS call happens at import;
  - peak RSS of a handler process serving 10,080 bars (data in a moto server outside it);
  - bytes at rest per stored 1m bar, without and with the tick volume.
"""

from __future__ import annotations

import argparse
import base64
import copy
import gzip
import json
import os
import statistics
import subprocess
import sys
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "functions" / "api"))
for name, value in {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench"}.items():
    os.environ.setdefault(name, value)
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")  # one access-log line per call is not the subject

SYMBOL = "BTCUSD-OTC"
BARS = 10_080
EVENT = json.loads((ROOT / "tests" / "unit" / "events" / "candles_get.json").read_text())

rows: list[tuple[str, str, str, str]] = []  # (measure, value, target, verdict)


def row(measure: str, value: str, target: str = "", ok: bool | None = None) -> None:
    rows.append((measure, value, target, "" if ok is None else ("ok" if ok else "MISSED")))


def pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f} ms"


def seven_days_of_bars() -> list[tuple]:
    from tradowix_bot.collector.synthetic_market import SyntheticMarket

    end = int(time.time()) // 60 * 60  # up to the last closed minute: today's object is partial
    return SyntheticMarket().bars(SYMBOL, end - BARS * 60, end)


def create_resources_here():
    """The template's bucket and tables in whatever boto3 talks to (moto in-process here)."""
    import boto3
    from tradowix_local.emulator import create_resources
    from tradowix_local.template import Template

    class InProcess:
        @staticmethod
        def client(service):
            return boto3.client(service)

    return create_resources(InProcess(), Template())


def apply_function_environment() -> None:
    from tradowix_local.template import Template

    env = Template().functions()["ApiFunction"].environment
    os.environ.update({k: v for k, v in env.items() if k != "POWERTOOLS_LOG_LEVEL"})


def candles_event(query: dict, headers: dict | None = None, path: str = "/api/candles") -> dict:
    from urllib.parse import urlencode

    event = copy.deepcopy(EVENT)
    event["rawPath"] = event["requestContext"]["http"]["path"] = path
    event["rawQueryString"] = urlencode(query)
    event["queryStringParameters"] = {k: str(v) for k, v in query.items()}
    event["headers"].update(headers or {})
    return event


class Context:
    function_name = "ApiFunction"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:ApiFunction"
    aws_request_id = "bench"

    @staticmethod
    def get_remaining_time_in_millis() -> int:
        return 10_000


def bench_warm_requests(runs: int, names: dict) -> None:
    """Warm /api/candles as real clients call it: with a key (auth, per-key rate-limit counter)
    and with and without `Accept-Encoding: gzip` (httpx, browsers and curl --compressed send
    it), against the floor measured in the same run, interleaved."""
    import boto3
    import orjson
    from partner_api import context
    from partner_api.app import GZIP_LEVEL, handler
    from tradowix_bot.candles import as_dicts
    from tradowix_bot.server.keys import KeyRegistry
    from tradowix_bot.server.market import MarketData
    from tradowix_bot.server.store import CANDLE_PREFIX, decode_day

    s3 = boto3.client("s3")
    bucket = names["CandlesBucket"]
    keys = sorted(
        o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix=f"{CANDLE_PREFIX}{SYMBOL}/")["Contents"]
    )
    _, api_key = KeyRegistry(names["KeysTable"]).create("bench", rate_limit=1_000_000)
    context.reset()
    cases = [
        ("no limit", {"symbol": SYMBOL}, "identity"),
        ("no limit", {"symbol": SYMBOL}, "gzip"),
        ("limit=4320", {"symbol": SYMBOL, "limit": 4320}, "gzip"),
        ("timeframe=300", {"symbol": SYMBOL, "timeframe": 300}, "gzip"),
    ]
    row(
        "settings",
        f"X-Api-Key sent (key check + rate-limit counter on); gzip level {GZIP_LEVEL}; {len(keys)} day objects",
    )
    for label, query, encoding in cases:
        event = candles_event(query, {"x-api-key": api_key, "accept-encoding": encoding})
        # the answer the floor has to encode: the same data the API returns
        first = handler(event, Context())
        assert first["statusCode"] == 200, first
        assert (first["headers"].get("content-encoding") == "gzip") == (encoding == "gzip")
        answer = orjson.loads(
            gzip.decompress(base64.b64decode(first["body"])) if encoding == "gzip" else first["body"]
        )
        expected = {"no limit": BARS, "limit=4320": 4320, "timeframe=300": BARS // 5}[label]
        assert abs(answer["count"] - expected) <= 1, (label, answer["count"])
        api, floor = [], []
        for _ in range(runs):  # interleaved, so both see the same machine load
            started = time.perf_counter()
            result = handler(event, Context())
            api.append(time.perf_counter() - started)
            assert result["statusCode"] == 200
            started = time.perf_counter()
            bars = []
            for key in keys:
                bars.extend(decode_day(s3.get_object(Bucket=bucket, Key=key)["Body"].read()))
            orjson.dumps(answer)
            floor.append(time.perf_counter() - started)
        ratio = statistics.median(api) / statistics.median(floor)
        name = f"/api/candles {label}, Accept-Encoding: {encoding}"
        row(f"{name}: p50 / p99", f"{ms(pct(api, 0.5))} / {ms(pct(api, 0.99))}")
        row(
            f"  floor (S3 GET {len(keys)} objects + gunzip + decode + encode) p50 / p99",
            f"{ms(pct(floor, 0.5))} / {ms(pct(floor, 0.99))}",
        )
        row(f"  ratio p50 api / floor ({label}, {encoding})", f"{ratio:.2f}x", "<= 1.0x", ratio <= 1.0)
    # correctness of what was timed: the API's bars equal the stored bars
    stored = []
    for key in keys:
        stored.extend(decode_day(s3.get_object(Bucket=bucket, Key=key)["Body"].read()))
    body = handler(candles_event({"symbol": SYMBOL}, {"x-api-key": api_key}), Context())["body"]
    assert orjson.loads(body)["candles"] == as_dicts(stored)
    assert isinstance(context.services.market(), MarketData)
    bench_udf_against_candles(runs, api_key)


def bench_udf_against_candles(runs: int, api_key: str) -> None:
    """The TradingView datafeed's `history` against `/api/candles` for the same bars (one day of
    5m bars, gzip), interleaved in one run: the same market code, so about the same cost."""
    from partner_api.app import handler

    end = int(time.time()) // 300 * 300
    start = end - 86400
    headers = {"x-api-key": api_key, "accept-encoding": "gzip"}
    udf = candles_event(
        {"symbol": SYMBOL, "resolution": "5", "from": start, "to": end}, headers, "/udf/history"
    )
    rest = candles_event({"symbol": SYMBOL, "timeframe": 300, "start": start, "end": end}, headers)
    times: dict[str, list[float]] = {"udf": [], "rest": []}
    for _ in range(runs):
        for name, event in (("udf", udf), ("rest", rest)):
            started = time.perf_counter()
            result = handler(event, Context())
            times[name].append(time.perf_counter() - started)
            assert result["statusCode"] == 200, result
    row(
        "UDF /udf/history p50 vs /api/candles p50 (288 5m bars, gzip)",
        f"{ms(pct(times['udf'], 0.5))} vs {ms(pct(times['rest'], 0.5))}",
    )


def bench_resample(bars: list[tuple], runs: int) -> None:
    """Ours (bars in, bars out) against pandas twice: its core resample on a DataFrame built
    beforehand, and the same job end to end (bars in, bars out, as the API would need)."""
    import pandas as pd
    from tradowix_bot.resample import resample

    agg = {"open": "first", "high": "max", "low": "min", "close": "last"}

    def to_frame(data):
        frame = pd.DataFrame(data, columns=["time", "open", "high", "low", "close"])
        frame.index = pd.to_datetime(frame["time"], unit="s")
        return frame

    def pandas_core(frame):
        return frame.resample("300s", origin="epoch", label="left", closed="left").agg(agg).dropna()

    def pandas_end_to_end(data):
        out = pandas_core(to_frame(data))
        columns = [out[c].tolist() for c in ("open", "high", "low", "close")]
        return list(zip((out.index.as_unit("s").asi8).tolist(), *columns, strict=True))

    frame = to_frame(bars)
    assert resample(bars, 300) == pandas_end_to_end(bars)  # same answer before timing anything
    ours, core, whole = [], [], []
    for _ in range(runs):  # interleaved
        started = time.perf_counter()
        resample(bars, 300)
        ours.append(time.perf_counter() - started)
        started = time.perf_counter()
        pandas_core(frame)
        core.append(time.perf_counter() - started)
        started = time.perf_counter()
        pandas_end_to_end(bars)
        whole.append(time.perf_counter() - started)
    ours_ms = statistics.median(ours)
    row("resample 10,080 -> 5m, ours (bars in, bars out), median", ms(ours_ms))
    row("  pandas end to end (bars in, bars out), median", ms(statistics.median(whole)))
    speedup = statistics.median(whole) / ours_ms
    row("  pandas end to end / ours", f"{speedup:.1f}x", ">= 3x", speedup >= 3)
    row("  pandas core only (DataFrame built beforehand), median", ms(statistics.median(core)))
    speedup = statistics.median(core) / ours_ms
    row("  pandas core only / ours", f"{speedup:.1f}x", ">= 3x", speedup >= 3)


IMPORT_PROBE = textwrap.dedent(
    """
    import socket, sys, time
    connects = []
    real_connect = socket.socket.connect
    def record(self, address):
        connects.append(address)
        return real_connect(self, address)
    socket.socket.connect = record
    started = time.perf_counter()
    {imports}
    elapsed = time.perf_counter() - started
    clients = 0
    if "tradowix_bot.server.aws" in sys.modules:
        aws = sys.modules["tradowix_bot.server.aws"]
        clients = aws.clients_made()
    print(elapsed, len(connects), clients)
    """
)


def import_time(imports: str, env: dict) -> tuple[float, int, int]:
    out = subprocess.run(
        [sys.executable, "-c", IMPORT_PROBE.format(imports=imports)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    ).stdout.split()
    return float(out[0]), int(out[1]), int(out[2])


def bench_cold_start(runs: int) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "functions" / "api")}
    env["AWS_ENDPOINT_URL"] = "http://127.0.0.1:9"  # an AWS call at import would show as a connect
    handler_times, baseline_times, connects, clients = [], [], 0, 0
    for _ in range(runs):  # interleaved, so both see the same machine load and disk cache
        t, c, k = import_time("import partner_api.app", env)
        handler_times.append(t)
        connects, clients = connects + c, clients + k
        baseline_times.append(import_time("import fastapi, mangum, boto3", env)[0])
    ratio = statistics.median(handler_times) / statistics.median(baseline_times)
    row(
        f"cold import: handler module / fastapi+mangum+boto3 (median of {runs})",
        f"{ms(statistics.median(handler_times))} / {ms(statistics.median(baseline_times))}",
    )
    row("  ratio", f"{ratio:.2f}x", "<= 1.3x", ratio <= 1.3)
    row(  # clients are made during init on purpose (issue 16 item 2): Lambda runs init at full CPU
        "  AWS calls (connects) / boto3 clients made at import",
        f"{connects} / {clients}",
        "0 / >0",
        connects == 0 and clients > 0,
    )


RSS_PROBE = textwrap.dedent(
    """
    import json, sys
    sys.path.insert(0, {api_dir!r})
    from partner_api.app import handler
    event = json.loads({event!r})
    class Ctx:
        function_name = "ApiFunction"; memory_limit_in_mb = 512; aws_request_id = "rss"
        invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:ApiFunction"
        def get_remaining_time_in_millis(self): return 10000
    counts = []
    for _ in range(20):
        result = handler(event, Ctx())
        assert result["statusCode"] == 200, result
        counts.append(json.loads(result["body"])["count"])
    # VmHWM is this process's own peak (ru_maxrss would include the forking parent's pages)
    with open("/proc/self/status") as status:
        peak_kb = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
    print(peak_kb, max(counts))
    """
)


def bench_rss(bars: list[tuple]) -> None:
    """The handler in its own process; the data in a moto server in this one (as S3 is remote)."""
    from tradowix_bot.server import aws
    from tradowix_bot.server.store import CandleStore
    from tradowix_local.emulator import Emulator, create_resources
    from tradowix_local.template import Template

    emulator = Emulator()
    saved = {k: os.environ.get(k) for k in ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")}
    try:
        emulator.start()
        names = create_resources(emulator, Template())
        aws.reset()
        CandleStore(names["CandlesBucket"]).write(SYMBOL, bars)
        probe = RSS_PROBE.format(
            api_dir=str(ROOT / "functions" / "api"), event=json.dumps(candles_event({"symbol": SYMBOL}))
        )
        out = subprocess.run(
            [sys.executable, "-c", probe], env=dict(os.environ), capture_output=True, text=True, check=True
        ).stdout.split()
        peak_mb, served = int(out[0]) / 1024, int(out[1])
        row(
            f"peak RSS of a handler process serving {served:,} bars (20 calls)",
            f"{peak_mb:.1f} MB",
            "<= 100 MB",
            peak_mb <= 100,
        )
    finally:
        emulator.stop()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        aws.reset()


def bench_bytes_at_rest(names: dict, bars: list[tuple]) -> None:
    import boto3
    from tradowix_bot.server.store import CANDLE_PREFIX

    objects = boto3.client("s3").list_objects_v2(
        Bucket=names["CandlesBucket"], Prefix=f"{CANDLE_PREFIX}{SYMBOL}/"
    )
    total = sum(o["Size"] for o in objects["Contents"])
    per_bar = total / len(bars)
    row(
        f"bytes at rest: {total:,} B in {len(objects['Contents'])} objects / {len(bars):,} bars",
        f"{per_bar:.1f} B/bar",
        "<= 20",
        per_bar <= 20,
    )
    import random

    from tradowix_bot.server.store import encode_day

    rng = random.Random(7)  # a tick count per minute, as the collector stores it (~1 tick/s)
    counted = [(*b[:5], rng.randint(20, 120)) for b in bars]
    days = sorted({b[0] // 86400 for b in counted})
    with_volume = sum(
        len(encode_day(SYMBOL, str(d), [b for b in counted if b[0] // 86400 == d])) for d in days
    )
    row(
        "bytes at rest with tick volume (6-element rows), same bars",
        f"{with_volume / len(bars):.1f} B/bar",
        "<= 20",
        with_volume / len(bars) <= 20,
    )
    plain = len(
        json.dumps([{"time": b[0], "open": b[1], "high": b[2], "low": b[3], "close": b[4]} for b in bars])
    )
    gz = len(gzip.compress(json.dumps([list(b) for b in bars]).encode()))
    row(
        "  for comparison: original file format / one gzip'd blob",
        f"{plain / len(bars):.1f} / {gz / len(bars):.1f} B/bar",
    )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=200, help="warm requests per case (default 200)")
    parser.add_argument("--cold-runs", type=int, default=15, help="fresh interpreters per import case")
    parser.add_argument(
        "--only", default="warm,resample,cold,rss", help="comma-separated sections (default: all of them)"
    )
    args = parser.parse_args()
    only = set(args.only.split(","))

    bars = seven_days_of_bars()
    assert len(bars) == BARS
    from moto import mock_aws
    from tradowix_bot.server import aws
    from tradowix_bot.server.store import CandleStore

    started = time.perf_counter()
    apply_function_environment()
    os.environ.pop("AWS_ENDPOINT_URL", None)
    if "warm" in only:
        with mock_aws():
            aws.reset()
            names = create_resources_here()
            CandleStore(names["CandlesBucket"]).write(SYMBOL, bars)
            bench_warm_requests(args.runs, names)
            bench_bytes_at_rest(names, bars)
        aws.reset()
    if "resample" in only:
        bench_resample(bars, max(20, args.runs // 4))
    if "cold" in only:
        bench_cold_start(args.cold_runs)
    if "rss" in only:
        bench_rss(bars)

    width = max(len(r[0]) for r in rows)
    vwidth = max(len(r[1]) for r in rows)
    print(
        f"\npartner API benchmark: {BARS:,} 1m bars of {SYMBOL}, python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}"
    )
    print(f"{'measure':<{width}}  {'value':<{vwidth}}  {'target':<8}  verdict")
    for measure, value, target, verdict in rows:
        print(f"{measure:<{width}}  {value:<{vwidth}}  {target:<8}  {verdict}")
    print(f"(total {time.perf_counter() - started:.0f}s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
