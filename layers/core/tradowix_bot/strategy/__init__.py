"""The built-in strategy (`builtin.py`), its backtest (`backtest.py`) and live signals
(`live_signals.py`): the [strategy] extra; the client and the server never import it.

The built-in strategy's names are also here because partner bots written before the package
split use them this way (as examples/signal_bot_chart.py did)::

    from tradowix_bot import strategy
    strategy.latest_signal(bars)
"""

from .builtin import (
    BB_PERIOD,
    BB_STD,
    CALL,
    PUT,
    RSI_PERIOD,
    WARMUP,
    Signal,
    StrategyUnavailable,
    latest_signal,
    require,
    score,
    signals,
    validate_confidence,
)

__all__ = [
    "BB_PERIOD",
    "BB_STD",
    "CALL",
    "PUT",
    "RSI_PERIOD",
    "WARMUP",
    "Signal",
    "StrategyUnavailable",
    "latest_signal",
    "require",
    "score",
    "signals",
    "validate_confidence",
]
