"""Example signal bot on a Tradowix chart deployment, using only ChartApiClient (+ the strategy).

    export TRADOWIX_CHART_URL=http://127.0.0.1:8765        # or your deployment's URL
    export TRADOWIX_CHART_API_KEY=twk_...                   # your partner key
    python examples/signal_bot_chart.py [SYMBOL] [--timeframe 60] [--min-confidence 0.3]

It lists the symbols your key may read, loads recent history, subscribes to live bars, and
prints the built-in strategy's signal (CALL/PUT for the next bar) each time a bar closes.
Needs `pip install 'tradowix-bot[strategy]'` for the strategy's indicators.
"""

from __future__ import annotations

import argparse
import sys

from tradowix_bot import strategy
from tradowix_bot.client import ChartApiClient, ChartApiError
from tradowix_bot.strategy.live_signals import LiveSignals


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "symbol", nargs="?", help="market to trade (default: the first one your key may read)"
    )
    parser.add_argument("--timeframe", type=int, default=60, help="bar size in seconds (default 60)")
    parser.add_argument("--min-confidence", type=float, default=0.3, help="signal threshold, 0..1")
    parser.add_argument("--bars", type=int, help="stop after this many closed bars (default: run forever)")
    args = parser.parse_args(argv)

    try:
        strategy.require()  # the indicators come with the [strategy] extra
        client = ChartApiClient()  # TRADOWIX_CHART_URL and TRADOWIX_CHART_API_KEY
    except (strategy.StrategyUnavailable, ValueError) as exc:  # ValueError: no or bad URL
        print(f"error: {exc}", file=sys.stderr)
        return 1
    try:
        # 1. Which markets may this key read?
        symbols = [s["symbol"] for s in client.symbols()["symbols"]]
        print(f"{len(symbols)} symbols: {', '.join(symbols)}")
        symbol = args.symbol or symbols[0]

        # 2. Recent history, so the indicators are ready at the first live bar.
        history = client.candles(symbol, timeframe=args.timeframe, limit=500)
        signals = LiveSignals(args.timeframe)
        signals.load(symbol, history["candles"], last_closed=history.get("last_closed", True))
        print(f"{symbol}: {history['count']} bars of history; waiting for bars to close ...")

        # 3. Live: every message goes through the strategy; a closed bar prints a signal.
        closed_bars = 0

        def on_msg(msg: dict) -> None:
            nonlocal closed_bars
            for closed in signals.on_message(msg):
                closed_bars += 1
                sig = closed.signal
                if sig is None:
                    print(f"{closed.bar.time} {symbol}: warming up")
                elif sig.tradable(args.min_confidence):
                    print(
                        f"{closed.bar.time} {symbol}: {sig.direction} next bar (confidence {sig.confidence:.2f})"
                    )
                else:
                    print(f"{closed.bar.time} {symbol}: no trade (confidence {sig.confidence:.2f})")
                sys.stdout.flush()
                if args.bars and closed_bars >= args.bars:
                    raise SystemExit(0)  # leaves subscribe_live_sync

        client.subscribe_live_sync(on_msg, symbol=symbol, timeframe=args.timeframe)
    except ChartApiError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        pass
    finally:
        client.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
