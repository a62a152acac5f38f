"""The built-in strategy, its backtest and live signals (the [strategy] extra)."""
