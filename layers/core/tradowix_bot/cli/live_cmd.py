"""`live SYM …`: a standalone live signal stream, one line per closed bar.

From a deployment with a partner key (`--url`/`--key`, or TRADOWIX_CHART_URL /
TRADOWIX_CHART_API_KEY) through ChartApiClient. The original's other mode, straight from
the Tradowix upstream with the owner's session token (`--token`), needs the collector's
upstream client: see `_upstream_messages` (the hook).
"""

from __future__ import annotations

import argparse
import os
import sys
import threading

from .sdk_common import (
    CommandFailed,
    add_deployment_args,
    api_failure,
    client_from,
    confidence,
    positive_int,
    progress,
    timeframe,
)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "live",
        help="standalone live signal stream: a signal line at each closed bar",
        description="Stream live bars of one or more symbols and print the built-in strategy's signal "
        "at each closed bar. Reads a deployment with a partner key (--url/--key or TRADOWIX_CHART_URL/"
        "TRADOWIX_CHART_API_KEY); reconnects by itself. Stop with Ctrl-C.",
    )
    p.add_argument("symbols", nargs="+", metavar="SYM", help="symbols, e.g. BTCUSD-OTC EURUSD-OTC")
    p.add_argument("--timeframe", type=timeframe, default=60, help="bar size in seconds (default 60)")
    p.add_argument(
        "--min-confidence", type=confidence, default=0.3, help="print trades at or above this (default 0.3)"
    )
    p.add_argument("--expiry", type=positive_int, default=1, help="expiry in bars (default 1)")
    p.add_argument(
        "--verbose", action="store_true", help="also print every bar update and the bars without a trade"
    )
    add_deployment_args(p)
    p.add_argument(
        "--token",
        help="owner's Tradowix session token: read the upstream directly instead of a deployment "
        "(default: TRADOWIX_SESSION_TOKEN, used only when no --url/TRADOWIX_CHART_URL is given)",
    )
    p.add_argument("--max-bars", type=positive_int, help="stop after this many closed bars (for scripts)")
    p.set_defaults(run=run)


def _upstream_messages(token: str, symbols: list[str], tf: int):
    """The owner's mode: the upstream read directly with the session token (no deployment)."""
    from tradowix_bot.collector import live_messages

    return live_messages(token, symbols, tf, os.environ.get("TRADOWIX_WS_URL"))


class Printer:
    def __init__(self, args: argparse.Namespace, stop: threading.Event):
        from tradowix_bot.strategy.live_signals import LiveSignals

        self.args = args
        self.stop = stop
        self.signals = LiveSignals(args.timeframe)
        self.closed = 0

    def on_msg(self, msg: dict) -> None:
        from .signal_cmd import describe, when

        kind = msg.get("type")
        if kind == "error":
            progress(f"server: {msg.get('error', 'error')}: {msg.get('message', '')}")
        elif kind == "status" and (self.args.verbose or msg.get("message")):
            progress(
                f"status: upstream_ready={msg.get('upstream_ready')} {msg.get('message') or ''}".rstrip()
            )
        elif kind == "bar" and self.args.verbose:
            c = msg.get("candle", {})
            state = "closed" if msg.get("closed") else "forming"
            print(f"{when(int(c.get('time', 0)))}  {msg.get('symbol')}  bar {state}  close {c.get('close')}")
        for closed in self.signals.on_message(msg):
            self.closed += 1
            if closed.signal is None:
                if self.args.verbose:
                    print(f"{when(closed.bar.time)}  {closed.symbol}  warming up ({closed.bars_known} bars)")
            elif closed.signal.tradable(self.args.min_confidence) or self.args.verbose:
                print(
                    describe(
                        closed.symbol,
                        closed.bar.time,
                        self.args.timeframe,
                        closed.signal,
                        self.args.min_confidence,
                        self.args.expiry,
                    ),
                    flush=True,
                )
            if self.args.max_bars and self.closed >= self.args.max_bars:
                self.stop.set()
        sys.stdout.flush()


def run(args: argparse.Namespace) -> int:
    from tradowix_bot.client.chart_client import ChartApiError, NotFoundError
    from tradowix_bot.strategy import builtin as strategy

    try:
        strategy.require()
    except strategy.StrategyUnavailable as exc:
        raise CommandFailed(str(exc)) from None
    stop = threading.Event()
    printer = Printer(args, stop)
    token = args.token or os.environ.get("TRADOWIX_SESSION_TOKEN")
    if not (args.url or os.environ.get("TRADOWIX_CHART_URL")) and token:
        from tradowix_bot.collector.sources import SourceError

        progress(f"streaming {', '.join(args.symbols)} from the upstream (Ctrl-C to stop) ...")
        try:
            for msg in _upstream_messages(token, args.symbols, args.timeframe):
                printer.on_msg(msg)
                if stop.is_set():
                    break
        except SourceError as exc:
            raise CommandFailed(f"upstream: {exc}") from None
        return 0
    client = client_from(args)
    try:
        for symbol in args.symbols:
            try:
                data = client.candles(symbol, timeframe=args.timeframe, limit=500)
            except NotFoundError:
                progress(f"{symbol}: no stored history yet; signals start after {strategy.WARMUP} bars")
                continue
            printer.signals.load(symbol, data["candles"], last_closed=data.get("last_closed", False))
            progress(f"{symbol}: {data['count']} bars of history loaded")
        progress(f"streaming {', '.join(args.symbols)} every {args.timeframe}s (Ctrl-C to stop) ...")
        client.subscribe_live_sync(printer.on_msg, symbols=args.symbols, timeframe=args.timeframe, stop=stop)
    except ChartApiError as exc:
        raise api_failure(exc) from None
    finally:
        client.close()
    return 0
