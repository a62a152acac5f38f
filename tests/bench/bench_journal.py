"""What durability costs the local stack: DynamoDB write latency through the embedded emulator
with and without the journal (each write fsync'd before its answer), one writer and many.

    .venv/bin/python tests/bench/bench_journal.py [--writes 300] [--writers 1,8,32]

Prints p50/p99 latency per write and writes per second for each configuration. Not a test:
the figures depend on the machine's disk (fsync) and load.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "local"))


def measure(journaled: bool, writes: int, writers: int) -> tuple[float, float, float]:
    import boto3
    from tradowix_local.emulator import Emulator
    from tradowix_local.journal import Journal, JournalMiddleware

    with tempfile.TemporaryDirectory() as tmp:
        journal = Journal(Path(tmp) / "journal")
        emulator = Emulator(middleware=lambda app: JournalMiddleware(app, journal) if journaled else app)
        emulator.start()
        try:
            if journaled:
                journal.open(1)
            ddb = boto3.client("dynamodb", endpoint_url=emulator.endpoint_url)
            table = f"bench-{os.getpid()}-{int(journaled)}-{writers}"
            ddb.create_table(
                TableName=table,
                AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                BillingMode="PAY_PER_REQUEST",
            )
            clients = [boto3.client("dynamodb", endpoint_url=emulator.endpoint_url) for _ in range(writers)]

            def write(i: int) -> float:
                started = time.perf_counter()
                clients[i % writers].put_item(
                    TableName=table, Item={"pk": {"S": f"k{i}"}, "v": {"N": str(i)}, "pad": {"S": "x" * 200}}
                )
                return time.perf_counter() - started

            for i in range(20):  # warm up
                write(i)
            started = time.perf_counter()
            with ThreadPoolExecutor(max_workers=writers) as pool:
                latencies = list(pool.map(write, range(writes)))
            elapsed = time.perf_counter() - started
        finally:
            if journal.active:
                journal.close()
            emulator.stop()
    latencies.sort()
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    return statistics.median(latencies) * 1000, p99 * 1000, writes / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--writes", type=int, default=300)
    parser.add_argument("--writers", default="1,8,32")
    args = parser.parse_args()
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "bench")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "bench")
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    print(f"{'writers':>7} {'journal':>8} {'p50 ms':>8} {'p99 ms':>8} {'writes/s':>9}")
    for writers in [int(w) for w in args.writers.split(",")]:
        for journaled in (False, True):
            p50, p99, rate = measure(journaled, args.writes, writers)
            print(f"{writers:>7} {'on' if journaled else 'off':>8} {p50:>8.1f} {p99:>8.1f} {rate:>9.0f}")


if __name__ == "__main__":
    main()
