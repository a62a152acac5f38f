"""`keys …`: manage partner API keys on the local stack or a deployed one."""

from __future__ import annotations

import argparse
import datetime as dt

from . import target as targets


def _when(ts: int | None) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%d %H:%M:%SZ") if ts else "never"


def _symbols(value: str) -> list[str]:
    return [s.strip() for s in value.split(",") if s.strip()]


def register(sub: argparse._SubParsersAction) -> None:
    keys = sub.add_parser("keys", help="manage partner API keys", description="Manage partner API keys.")
    keys.add_argument(
        "--stack", help="deployed CloudFormation stack name (default: TRADOWIX_STACK, else the local stack)"
    )
    ops = keys.add_subparsers(dest="op", required=True, metavar="OPERATION")
    create = ops.add_parser("create", help="create a key; prints it once, alone on the last line")
    create.add_argument("--name", required=True)
    create.add_argument(
        "--symbols", type=_symbols, help="comma-separated symbols this key may read (default: all)"
    )
    create.add_argument(
        "--rate-limit", type=int, metavar="N", help="requests per minute (default: the deployment's)"
    )
    ops.add_parser("list", help="list keys (never shows the keys themselves)")
    for op in ("disable", "enable", "delete"):
        p = ops.add_parser(op, help=f"{op} a key")
        p.add_argument("key_id")
    restrict = ops.add_parser("restrict", help="limit a key to some symbols, or allow all")
    restrict.add_argument("key_id")
    group = restrict.add_mutually_exclusive_group(required=True)
    group.add_argument("--symbols", type=_symbols)
    group.add_argument("--all", action="store_true")
    rate = ops.add_parser("rate-limit", help="set a key's requests per minute, or back to the default")
    rate.add_argument("key_id")
    group = rate.add_mutually_exclusive_group(required=True)
    group.add_argument("--per-minute", type=int, metavar="N")
    group.add_argument("--default", action="store_true")
    keys.set_defaults(run=run)


def _describe(record) -> str:
    symbols = "all symbols" if record.all_symbols else ",".join(record.symbols)
    state = "enabled" if record.enabled else "DISABLED"
    rate = f"{record.rate_limit}/min" if record.rate_limit else "default rate"
    return f"{record.key_id}  {state:8}  {record.name!r}  [{symbols}]  {rate}  created {_when(record.created_at)}  last used {_when(record.last_used_at)}"


def run(args: argparse.Namespace) -> int:
    target = targets.resolve(args.stack)
    registry = target.services().keys()
    if args.op == "create":
        record, raw = registry.create(args.name, args.symbols, args.rate_limit)
        print(f"Created {_describe(record)} on {target.description}.")
        print("This key is shown once and cannot be recovered; store it now:")
        print(raw)
    elif args.op == "list":
        records = registry.list()
        for record in records:
            print(_describe(record))
        if not records:
            print(f"No keys on {target.description}: protected endpoints are open to anyone.")
    elif args.op in ("disable", "enable"):
        print("Updated " + _describe(registry.set_enabled(args.key_id, args.op == "enable")))
    elif args.op == "delete":
        registry.delete(args.key_id)
        print(f"Deleted {args.key_id}.")
    elif args.op == "restrict":
        print("Updated " + _describe(registry.restrict(args.key_id, None if args.all else args.symbols)))
    elif args.op == "rate-limit":
        record = registry.set_rate_limit(args.key_id, None if args.default else args.per_minute)
        print("Updated " + _describe(record))
    return 0
