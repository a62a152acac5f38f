"""`candles import|export`: move the original server's `<SYMBOL>.json` files in and out of the store."""

from __future__ import annotations

import argparse
from pathlib import Path

from . import target as targets


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "candles",
        help="import or export the original's candle files",
        description="Import the original server's <SYMBOL>.json candle files into the store, or export them back.",
    )
    p.add_argument("--stack", help="deployed stack name (default: TRADOWIX_STACK, else the local stack)")
    ops = p.add_subparsers(dest="op", required=True, metavar="OPERATION")
    imp = ops.add_parser(
        "import", help="import every <SYMBOL>.json; a malformed file is reported and skipped whole"
    )
    imp.add_argument("--candles-dir", type=Path, help="default: TRADOWIX_CANDLES_DIR, else data/candles")
    exp = ops.add_parser("export", help="write <SYMBOL>.json files in the original format")
    exp.add_argument("--candles-dir", type=Path, help="default: TRADOWIX_CANDLES_DIR, else data/candles")
    exp.add_argument("--symbols", help="comma-separated symbols (default: every symbol with data)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from tradowix_bot.server.importer import candles_dir, export_dir, import_dir

    target = targets.resolve(args.stack)
    store = target.services().store()
    directory = candles_dir(args.candles_dir)
    if args.op == "import":
        if not directory.is_dir():
            print(f"error: {directory} is not a directory")
            return 1
        results = import_dir(store, directory)
        for r in results:
            print(f"rejected {r.error}" if r.error else f"imported {r.bars:6d} bars  {r.symbol}")
        failed = sum(1 for r in results if r.error)
        print(f"{len(results) - failed} file(s) imported, {failed} rejected, into {target.description}")
        return 1 if failed else 0
    symbols = [s.strip() for s in args.symbols.split(",")] if args.symbols else None
    for r in export_dir(store, directory, symbols):
        print(f"exported {r.bars:6d} bars  {r.path}")
    return 0
