"""Entry point: every command registers itself; errors are one clear line and exit 1.

Partners install the client alone or with `[strategy]`, without the server's packages: so no
command module imports server code at import time (only inside its `run`), and a command whose
extra is not installed says which one to install instead of a traceback.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys

from . import archive_cmd, backtest_cmd, candles_cmd, collect_cmd, keys_cmd, live_cmd, signal_cmd, stack_cmd

# Third-party module (top-level name) -> the extra of pyproject.toml that installs it.
EXTRA_OF_MODULE = {
    "boto3": "server",
    "botocore": "server",
    "aws_lambda_powertools": "server",
    "fastapi": "server",
    "mangum": "server",
    "orjson": "server",
    "itsdangerous": "server",
    "aiohttp": "server",
    "moto": "local",
    "uvicorn": "local",
    "yaml": "local",
    "localstack_client": "local",
    "talipp": "strategy",
    "matplotlib": "strategy",
    "ccxt": "ccxt",
}

# The owner's commands and the extra each needs; checked before they run (partner installs).
EXTRA_OF_COMMAND = {
    "keys": "server",
    "candles": "server",
    "collect": "server",
    "archive": "server",
    "chart": "local",
    "admin": "local",
}


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
    return parser


def missing_extra(exc: ModuleNotFoundError) -> str | None:
    """The extra that installs the missing module, or None when it is not a known dependency."""
    return EXTRA_OF_MODULE.get((exc.name or "").split(".")[0])


# What the owner's commands import from their extra, checked before they run. Only these: the
# collector's container installs the server side without the API's fastapi/mangum.
REQUIRED_OF_EXTRA = {"server": ("boto3", "aws_lambda_powertools"), "local": ("moto", "uvicorn", "yaml")}


def absent_modules(extra: str) -> list[str]:
    return [m for m in REQUIRED_OF_EXTRA[extra] if importlib.util.find_spec(m) is None]


def needs_extra(command: str, extra: str, module: str) -> int:
    print(
        f"error: `tradowix {command}` needs the [{extra}] extra (module {module!r} is not "
        f"installed): pip install 'tradowix-bot[{extra}]'",
        file=sys.stderr,
    )
    return 1


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from tradowix_bot.errors import DomainError

    from .target import NoTarget

    extra = EXTRA_OF_COMMAND.get(args.command)
    if args.command == "admin" and getattr(args, "action", None) == "unlock":
        extra = "server"  # talks to the stack's state table; runs no local stack
    absent = absent_modules(extra) if extra else []
    if absent:
        return needs_extra(args.command, extra, absent[0])
    try:
        return args.run(args) or 0
    except (DomainError, NoTarget) as exc:
        print(f"error: {getattr(exc, 'message', None) or exc}", file=sys.stderr)
        return 1
    except ModuleNotFoundError as exc:
        extra = missing_extra(exc)
        if extra is None:
            raise
        return needs_extra(args.command, extra, exc.name)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
