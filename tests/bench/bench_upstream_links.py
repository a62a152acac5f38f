#!/usr/bin/env python3
"""Cost of covering N symbols with one upstream connection each (vs rotating one link).

    .venv/bin/python tests/bench/bench_upstream_links.py [--links 100] [--seconds 30]

Starts the stand-in upstream in a child process, opens N authenticated links from this
process (each pings every 10 s as the protocol asks) and prints the client's RSS per link
and CPU per link-hour while idle, and the time to open them all.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SERVER = """
import sys, time
sys.path.insert(0, sys.argv[1])
from upstream_standin import StandinUpstream
s = StandinUpstream().start()
print(s.url, flush=True)
time.sleep(3600)
"""


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


async def run(url: str, links: int, seconds: float) -> None:
    from tradowix_bot.collector import Clock
    from tradowix_bot.collector.tradowix import TradowixSource

    source = TradowixSource(url, "good-token", Clock())
    before = rss_mb()
    started = time.monotonic()
    opened = [await source._open(f"link-{i}") for i in range(links)]
    took = time.monotonic() - started
    after = rss_mb()
    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    await asyncio.sleep(seconds)
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (cpu1.ru_utime + cpu1.ru_stime) - (cpu0.ru_utime + cpu0.ru_stime)
    print(f"{links} authenticated links opened in {took:.2f} s")
    print(f"client RSS {before:.1f} → {after:.1f} MB: {1024 * (after - before) / links:.0f} KB per link")
    print(f"idle CPU {cpu:.3f} s over {seconds:g} s: {cpu / links / seconds * 3600:.3f} CPU s per link-hour")
    for link in opened:
        await link.close()


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--links", type=int, default=100)
    ap.add_argument("--seconds", type=float, default=30)
    args = ap.parse_args()
    server = subprocess.Popen(
        [sys.executable, "-c", SERVER, str(ROOT / "tests")], stdout=subprocess.PIPE, text=True
    )
    try:
        url = server.stdout.readline().strip()
        asyncio.run(run(url, args.links, args.seconds))
    finally:
        server.terminate()
        server.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
