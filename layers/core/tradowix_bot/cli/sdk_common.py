"""Helpers shared by the partner-side commands (signal, backtest, live)."""

from __future__ import annotations

import argparse
import os
import sys

from tradowix_bot.errors import DomainError


class CommandFailed(DomainError):
    """A command's failure, printed by the CLI entry point as one line, exit 1."""

    status = 1
    code = "command_failed"


def confidence(text: str) -> float:
    """argparse type for --min-confidence: a number from 0 to 1 (else usage, exit 2)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1 (got {text})")
    return value


def timeframe(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"whole seconds expected (got {text!r})") from None
    from tradowix_bot.resample import validate_timeframe

    try:
        return validate_timeframe(value)  # the server's rule: refused here, not after a round trip
    except DomainError as exc:
        raise argparse.ArgumentTypeError(exc.message) from None


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"whole number expected (got {text!r})") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1 (got {value})")
    return value


def add_deployment_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--url", help="deployment's API URL (default: TRADOWIX_CHART_URL)")
    parser.add_argument(
        "--key",
        help="partner API key (default: TRADOWIX_CHART_API_KEY; prefer the variable: keys in "
        "command lines end up in shell history)",
    )


def client_from(args: argparse.Namespace):
    from tradowix_bot.client.chart_client import ChartApiClient

    url = args.url or os.environ.get("TRADOWIX_CHART_URL")
    if not url:
        raise CommandFailed("no deployment: pass --url or set TRADOWIX_CHART_URL")
    try:
        return ChartApiClient(url, args.key or os.environ.get("TRADOWIX_CHART_API_KEY") or None)
    except ValueError as exc:  # a URL without http(s)://
        raise CommandFailed(str(exc)) from None


def api_failure(exc) -> CommandFailed:
    """One line for a ChartApiError: the status and the server's code, when there was an HTTP
    answer, and the message (a network failure or a timeout has no status: none is made up)."""
    if not exc.status:
        return CommandFailed(exc.message)
    code = f" {exc.error}" if getattr(exc, "error", None) else ""
    return CommandFailed(f"HTTP {exc.status}{code}: {exc.message}")


def progress(text: str) -> None:
    print(text, file=sys.stderr, flush=True)
