"""`signal <path.json>`: the built-in strategy's signal at the last bar of a candle file."""

from __future__ import annotations

import argparse
import datetime as dt
import json
from pathlib import Path

from .sdk_common import CommandFailed, confidence, positive_int, timeframe


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "signal",
        help="run the built-in strategy on one symbol file and print its latest signal",
        description="Print the built-in strategy's signal (CALL/PUT for the next bar, with a confidence) "
        "at the close of the last bar of a candle file in the original format (<SYMBOL>.json: "
        "a JSON list of {time, open, high, low, close} 1-minute bars, oldest first).",
    )
    p.add_argument("path", type=Path, help="candle file, e.g. data/candles/BTCUSD-OTC.json")
    p.add_argument(
        "--min-confidence",
        type=confidence,
        default=0.3,
        help="trade only at or above this (0..1, default 0.3)",
    )
    p.add_argument(
        "--timeframe", type=timeframe, default=60, help="resample to this many seconds (default 60)"
    )
    p.add_argument("--expiry", type=positive_int, default=1, help="expiry in bars (default 1)")
    p.add_argument("--json", action="store_true", help="print the signal as one JSON object")
    p.set_defaults(run=run)


def when(ts: int) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def describe(symbol: str, bar_time: int, tf: int, signal, min_confidence: float, expiry: int) -> str:
    base = f"{when(bar_time)}  {symbol}  {tf}s"
    detail = f"conf {signal.confidence:.2f}  (RSI {signal.rsi:.1f}, %B {signal.percent_b:+.2f})"
    if signal.tradable(min_confidence):
        return (
            f"{base}  {signal.direction:4}  {detail}  -> enter at the next bar's open, expiry {expiry} bar(s)"
        )
    return f"{base}  no trade  {detail} below --min-confidence {min_confidence:g}"


def run(args: argparse.Namespace) -> int:
    from tradowix_bot import strategy
    from tradowix_bot.candles import read_candle_file
    from tradowix_bot.resample import resample

    try:
        bars = read_candle_file(args.path, allow_unordered=False)
    except FileNotFoundError:
        raise CommandFailed(f"{args.path}: no such file") from None
    except IsADirectoryError:
        raise CommandFailed(f"{args.path}: is a directory, expected a candle file") from None
    except OSError as exc:
        raise CommandFailed(f"{args.path}: {exc.strerror or exc}") from None
    bars = resample(bars, args.timeframe)
    try:
        signal = strategy.latest_signal(bars)
    except strategy.StrategyUnavailable as exc:
        raise CommandFailed(str(exc)) from None
    except ValueError as exc:
        raise CommandFailed(f"{args.path}: {exc}") from None
    symbol = args.path.stem
    if args.json:
        print(
            json.dumps(
                {
                    "symbol": symbol,
                    "timeframe": args.timeframe,
                    "bar_time": signal.time,
                    "direction": signal.direction,
                    "confidence": signal.confidence,
                    "trade": signal.tradable(args.min_confidence),
                    "entry_time": signal.time + args.timeframe,
                    "expiry_time": signal.time + (1 + args.expiry) * args.timeframe,
                    "rsi": signal.rsi,
                    "percent_b": signal.percent_b,
                }
            )
        )
    else:
        print(describe(symbol, signal.time, args.timeframe, signal, args.min_confidence, args.expiry))
    return 0
