"""`chart` / `admin`: run the local stack (the original's commands and flags)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    for name, help_text in (
        ("chart", "run the local stack: chart UI + partner HTTP API + live WebSocket"),
        ("admin", "same as chart; opens the admin panel"),
    ):
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.add_argument("--host", default="127.0.0.1")
        p.add_argument("--port", type=int, default=8765, help="HTTP port (default 8765)")
        p.add_argument("--ws-port", type=int, default=8766, help="WebSocket port (default 8766)")
        p.add_argument(
            "--candles-dir",
            type=Path,
            help="import the original's <SYMBOL>.json files from here at start "
            "(default: TRADOWIX_CANDLES_DIR, else <data dir>/candles, i.e. data/candles, when it exists)",
        )
        p.add_argument("--token", help="Tradowix session token (default: TRADOWIX_SESSION_TOKEN)")
        p.add_argument("--no-browser", action="store_true", help="do not open a browser")
        p.add_argument("--offline", action="store_true", help="no upstream: synthetic data only")
        p.add_argument("--no-archive", action="store_true", help="do not backfill history at start")
        p.add_argument(
            "--admin-only", action="store_true", help="serve the admin panel without the partner API"
        )
        p.add_argument(
            "--endpoint",
            default=os.environ.get("AWS_ENDPOINT_URL"),
            help="use this S3/DynamoDB endpoint (e.g. LocalStack) instead of the embedded emulator",
        )
        p.add_argument(
            "--localstack",
            action="store_true",
            help="S3 and SSM on a running LocalStack (LOCALSTACK_HOST, default localhost:4566), "
            "DynamoDB on the embedded emulator",
        )
        p.add_argument(
            "--data-dir",
            type=Path,
            default=Path(os.environ.get("TRADOWIX_DATA_DIR", "data")),
            help="where the local stack keeps its state (default ./data)",
        )
        p.set_defaults(run=run, page="/admin" if name == "admin" else "/")
    admin = sub.choices["admin"]
    admin.add_argument(
        "action",
        nargs="?",
        choices=["unlock"],
        help="unlock: lift the admin sign-in lock (after too many wrong secrets) of every address, "
        "or of --address, on the running local stack or --stack",
    )
    admin.add_argument("--address", help="with unlock: only this client address")
    admin.add_argument(
        "--stack", help="with unlock: a deployed stack (default: TRADOWIX_STACK, else the local one)"
    )


def unlock(args: argparse.Namespace) -> int:
    from . import target as targets

    target = targets.resolve(args.stack, args.data_dir)
    forgotten = target.services().login_throttle().unlock(args.address)
    which = f"address {args.address}" if args.address else "every address"
    print(f"Admin sign-in unlocked for {which} on {target.description} ({forgotten} counted).")
    return 0


def run(args: argparse.Namespace) -> int:
    if getattr(args, "action", None) == "unlock":
        return unlock(args)
    try:
        from tradowix_local.localstack import localstack_endpoints
        from tradowix_local.stack import StackOptions, main
    except ImportError:
        raise SystemExit(
            "error: the local stack needs the [local] extra: pip install -e '.[local]'"
        ) from None
    # As the original: data/candles (<data dir>/candles) is imported when it is there; a folder
    # the user named (flag or TRADOWIX_CANDLES_DIR) must exist.
    named = args.candles_dir or os.environ.get("TRADOWIX_CANDLES_DIR")
    candles_dir = Path(named) if named else args.data_dir / "candles"
    if not named and not candles_dir.is_dir():
        candles_dir = None
    options = StackOptions(
        host=args.host,
        port=args.port,
        ws_port=args.ws_port,
        data_dir=args.data_dir,
        endpoint=args.endpoint or None,
        service_endpoints=localstack_endpoints() if args.localstack else None,
        candles_dir=candles_dir,
        offline=args.offline,
        open_path=None if args.no_browser else ("/admin" if args.admin_only else args.page),
        admin_only=args.admin_only,
        token=args.token,
        backfill_days=0 if args.no_archive else None,
    )
    return main(options)
