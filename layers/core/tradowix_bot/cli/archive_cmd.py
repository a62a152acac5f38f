"""`archive`: one-shot backfill of every symbol's 1m history (resumable, idempotent).

python -m tradowix_bot.cli archive --days 7                 into the candle store (S3)
python -m tradowix_bot.cli archive --hours 6 --candles-dir data/candles   original files
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

from .collect_cmd import add_source_args, build_source, stores
from .sdk_common import CommandFailed


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("archive", help="backfill history of all symbols once", description=__doc__)
    span = p.add_mutually_exclusive_group()
    span.add_argument("--days", type=float, default=7.0, help="days of history (default 7)")
    span.add_argument("--hours", type=float, help="hours of history instead of days")
    p.add_argument(
        "--candles-dir", type=Path, help="write the original's <SYMBOL>.json files here instead of S3"
    )
    add_source_args(p)
    p.set_defaults(run=run)


def _bar(done: int, total: int, symbol: str, pages: int) -> None:
    width = 30
    filled = width * done // max(total, 1)
    line = f"\rarchive [{'#' * filled}{'.' * (width - filled)}] {done}/{total} {symbol:<14} page {pages:>3}"
    print(line, end="", file=sys.stderr, flush=True)


def run(args: argparse.Namespace) -> int:
    from tradowix_bot.collector import Clock
    from tradowix_bot.collector.archive import FilesTarget, StoreTarget, archive
    from tradowix_bot.collector.sources import SourceError

    clock = Clock(args.clock_speed, args.clock_anchor)
    if args.candles_dir is not None:
        target = FilesTarget(args.candles_dir)
        store = None
    else:
        store, _ = stores(args)  # first: finding the local stack sets its emulator endpoint
        target = StoreTarget(store)
    source = build_source(args, clock)
    seconds = (args.hours * 3600) if args.hours is not None else args.days * 86400
    now = int(clock.now())
    end = now - now % 60
    start = end - int(seconds) // 60 * 60

    async def main():
        await source.start()
        try:
            if args.symbols:
                symbols = [s.strip() for s in args.symbols.split(",") if s.strip()]
            else:
                infos = await source.instruments()
                symbols = [i.symbol for i in infos]
                if store is not None and infos:
                    store.write_catalog(infos)
            return await archive(source, target, symbols, start, end, progress=_bar)
        finally:
            await source.close()

    started = time.monotonic()
    try:
        results = asyncio.run(main())
    except SourceError as exc:  # offline, refused token: nothing was written; one line, not a traceback
        raise CommandFailed(f"upstream: {exc}; nothing was archived") from None
    print(file=sys.stderr)
    failed = 0
    for r in results:
        if r.error:
            failed += 1
            print(f"{r.symbol}: FAILED ({r.error}); run the command again to resume", file=sys.stderr)
        else:
            print(f"{r.symbol}: {r.written} new bars")
    print(
        f"archive done in {time.monotonic() - started:.1f}s: {len(results) - failed} symbols ok, {failed} failed"
    )
    return 1 if failed else 0
