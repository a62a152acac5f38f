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
        "at the close of the last closed bar of a candle file in the original format (<SYMBOL>.json: "
        "a JSON list of {time, open, high, low, close} 1-minute bars, oldest first) or a saved "
        '/api/candles answer. A bar that is still forming (the answer\'s "last_closed": false, or a '
        "--timeframe bucket whose last minute is not in the file) is skipped, and the command says so.",
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


def forming_in_file(path: Path) -> bool:
    """True when the file is a saved /api/candles answer whose newest bar was still forming."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False  # read_candle_file has already said what is wrong with it
    return isinstance(doc, dict) and doc.get("last_closed") is False


def closed_bars(bars: list, timeframe: int, *, last_forming: bool = False) -> tuple[list, list[str]]:
    """The bars resampled to `timeframe` without a trailing bar that has not closed, and one
    note per bar left out. A signal on such a bar would use a close that is not final yet."""
    from tradowix_bot.resample import resample

    notes = []
    if last_forming and bars:
        notes.append(f"the last bar ({when(bars[-1][0])}) is still forming (last_closed: false): skipped")
        bars = bars[:-1]
    out = resample(bars, timeframe)
    if out and timeframe > 60 and bars[-1][0] < out[-1][0] + timeframe - 60:
        notes.append(
            f"the last {timeframe}s bar ({when(out[-1][0])}) has not closed (the file ends at "
            f"{when(bars[-1][0] + 60)}): skipped"
        )
        out = out[:-1]
    return out, notes


def run(args: argparse.Namespace) -> int:
    from tradowix_bot.candles import read_candle_file
    from tradowix_bot.strategy import builtin as strategy

    from .sdk_common import progress

    try:
        bars = read_candle_file(args.path, allow_unordered=False)
    except FileNotFoundError:
        raise CommandFailed(f"{args.path}: no such file") from None
    except IsADirectoryError:
        raise CommandFailed(f"{args.path}: is a directory, expected a candle file") from None
    except OSError as exc:
        raise CommandFailed(f"{args.path}: {exc.strerror or exc}") from None
    bars, notes = closed_bars(bars, args.timeframe, last_forming=forming_in_file(args.path))
    for note in notes:
        progress(f"note: {note}")
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
                    "notes": notes,
                }
            )
        )
    else:
        print(describe(symbol, signal.time, args.timeframe, signal, args.min_confidence, args.expiry))
    return 0
