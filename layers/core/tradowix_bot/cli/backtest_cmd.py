"""`backtest`: the built-in strategy against naive baselines, with 95 % intervals and a plot."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

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


def _thresholds(text: str) -> list[float]:
    return [confidence(t) for t in text.split(",") if t.strip()]


def _payout(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0 < value <= 10:
        raise argparse.ArgumentTypeError(f"payout is the win's profit per stake, e.g. 0.85 (got {text})")
    return value


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "backtest",
        help="backtest the built-in strategy against naive baselines (table + PNG plot)",
        description="Backtest the built-in strategy on saved candle files (--candles-dir) or on a "
        "deployment's history (--url/--key): per symbol and overall, trades and win rate with a 95% "
        "Wilson interval, the same for naive baselines (always CALL, repeat the last bar, random with "
        "a fixed seed) on the same bars, and a sweep over --min-confidence. Says plainly whether the "
        "strategy beats the baselines beyond the interval.",
    )
    source = p.add_mutually_exclusive_group()
    source.add_argument(
        "--candles-dir",
        type=Path,
        help="folder of <SYMBOL>.json candle files (default: TRADOWIX_CANDLES_DIR, else data/candles)",
    )
    add_deployment_args(p)
    p.add_argument("--symbols", help="comma-separated symbols (default: all)")
    p.add_argument("--timeframe", type=timeframe, default=60, help="bar size in seconds (default 60)")
    p.add_argument("--expiry", type=positive_int, default=1, help="expiry in bars (default 1)")
    p.add_argument("--payout", type=_payout, default=0.85, help="profit per stake on a win (default 0.85)")
    p.add_argument(
        "--min-confidence", type=confidence, default=0.3, help="strategy threshold reported (default 0.3)"
    )
    p.add_argument(
        "--thresholds",
        type=_thresholds,
        default=None,
        help="comma-separated thresholds for the sweep (default 0,0.1,...,0.9)",
    )
    p.add_argument(
        "--tie",
        choices=("draw", "loss"),
        default="draw",
        help="what an equal price at expiry is: 'draw' (refunded, the default) or 'loss' (brokers "
        "that keep the stake on a tie)",
    )
    p.add_argument("--seed", type=int, default=7, help="seed of the random baseline (default 7)")
    p.add_argument(
        "--plot", type=Path, default=Path("backtest.png"), help="where to save the PNG (default backtest.png)"
    )
    p.add_argument("--no-plot", action="store_true", help="do not draw the PNG")
    p.set_defaults(run=run)


def _from_dir(directory: Path, symbols: list[str] | None, tf: int) -> dict:
    from tradowix_bot.candles import read_candle_file
    from tradowix_bot.resample import resample

    if not directory.is_dir():
        raise CommandFailed(f"{directory}: no such directory")
    files = sorted(p for p in directory.glob("*.json") if p.is_file())
    if symbols:
        files = [f for f in files if f.stem in symbols]
    if not files:
        wanted = f" for {','.join(symbols)}" if symbols else ""
        raise CommandFailed(f"{directory}: no candle files (<SYMBOL>.json){wanted}")
    series = {}
    for n, path in enumerate(files, start=1):
        try:
            bars = read_candle_file(path, allow_unordered=False)
        except OSError as exc:
            raise CommandFailed(f"{path}: {exc.strerror or exc}") from None
        progress(f"[{n}/{len(files)}] read {path.name}: {len(bars)} bars")
        series[path.stem] = resample(bars, tf)
    return series


def _from_deployment(args: argparse.Namespace, symbols: list[str] | None, tf: int) -> dict:
    from tradowix_bot.client.chart_client import ChartApiError, NotFoundError

    with client_from(args) as client:
        try:
            names = symbols or [s["symbol"] for s in client.symbols()["symbols"]]
            series = {}
            for n, symbol in enumerate(names, start=1):
                try:
                    data = client.candles(symbol, timeframe=tf)
                except NotFoundError:
                    progress(f"[{n}/{len(names)}] {symbol}: no stored data, skipped")
                    continue
                candles = data["candles"]
                if candles and data.get("last_closed") is False:
                    candles = candles[:-1]  # the forming bar has no result yet
                series[symbol] = [(c["time"], c["open"], c["high"], c["low"], c["close"]) for c in candles]
                progress(f"[{n}/{len(names)}] {symbol}: {len(candles)} bars")
        except ChartApiError as exc:
            raise api_failure(exc) from None
    if not series:
        raise CommandFailed(f"{client.base_url}: no symbol with stored data")
    return series


def run(args: argparse.Namespace) -> int:
    from tradowix_bot.strategy import backtest
    from tradowix_bot.strategy import builtin as strategy

    symbols = [s.strip() for s in args.symbols.split(",") if s.strip()] if args.symbols else None
    if args.url and args.candles_dir:
        raise CommandFailed("read from --candles-dir or from --url, not both")
    try:
        strategy.require()
    except strategy.StrategyUnavailable as exc:
        raise CommandFailed(str(exc)) from None
    if args.url:
        series = _from_deployment(args, symbols, args.timeframe)
    else:
        directory = args.candles_dir or Path(os.environ.get("TRADOWIX_CANDLES_DIR") or "data/candles")
        series = _from_dir(directory, symbols, args.timeframe)
    progress("computing signals and outcomes ...")
    try:
        report = backtest.run(
            series,
            timeframe=args.timeframe,
            expiry=args.expiry,
            payout=args.payout,
            min_confidence=args.min_confidence,
            thresholds=args.thresholds or backtest.DEFAULT_THRESHOLDS,
            seed=args.seed,
            tie_is_loss=args.tie == "loss",
            progress=progress,
        )
    except strategy.StrategyUnavailable as exc:
        raise CommandFailed(str(exc)) from None
    print(backtest.format_report(report))
    if not args.no_plot:
        try:
            path = backtest.plot(report, args.plot)
        except ImportError:
            raise CommandFailed("the plot needs matplotlib: pip install 'tradowix-bot[strategy]'") from None
        except OSError as exc:
            raise CommandFailed(f"cannot save the plot to {args.plot}: {exc.strerror or exc}") from None
        print(f"Plot saved to {path}")
    return 0
