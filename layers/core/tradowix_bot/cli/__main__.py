"""Entry point: every command registers itself; errors are one clear line and exit 1."""

from __future__ import annotations

import argparse
import sys

from . import (
    archive_cmd,
    backtest_cmd,
    candles_cmd,
    collect_cmd,
    keys_cmd,
    live_cmd,
    signal_cmd,
    stack_cmd,
    status_cmd,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tradowix", description="Tradowix market-data sharing: local stack, keys, data tools."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    stack_cmd.register(sub)
    keys_cmd.register(sub)
    candles_cmd.register(sub)
    signal_cmd.register(sub)
    backtest_cmd.register(sub)
    live_cmd.register(sub)
    collect_cmd.register(sub)
    archive_cmd.register(sub)
    status_cmd.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from tradowix_bot.errors import DomainError

    from .target import NoTarget

    try:
        return args.run(args) or 0
    except (DomainError, NoTarget) as exc:
        print(f"error: {getattr(exc, 'message', None) or exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
