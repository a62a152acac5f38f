"""The built-in strategy: CALL/PUT signals for binary-option style trades.

A signal is decided at the close of bar *i* and trades the next bar: entry at the open of
bar *i+1*, expiry at the close of bar *i+expiry* (`expiry` in bars, default 1). A CALL wins
if the price at expiry is above the entry, a PUT if it is below; an equal price is a draw
(brokers refund it).

Logic (mean reversion, which is what short-horizon OTC series show when they show anything):

- RSI(14) of closes: `rsi_score = clip((50 - RSI) / 30, -1, 1)`: oversold (RSI 20) is +1 (CALL),
  overbought (RSI 80) is -1 (PUT).
- Bollinger Bands(20, 2σ) position `%B = (close - lower) / (upper - lower)`:
  `band_score = clip(0.5 - %B, -1, 1)`: a close at the lower band is +0.5, half a band
  width below it +1.
- `score = (rsi_score + band_score) / 2`; direction CALL if score > 0, PUT if < 0;
  confidence = |score| in [0, 1]. Trade only when confidence >= min_confidence.

The two indicators come from talipp (maintained, pure Python, no numpy, incremental: the
live stream adds one value per closed bar). It is in the `strategy` extra, never in the
client's base dependencies.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

RSI_PERIOD = 14
BB_PERIOD = 20
BB_STD = 2.0
WARMUP = max(RSI_PERIOD + 1, BB_PERIOD)  # bars before the first signal
CALL, PUT = "CALL", "PUT"


class StrategyUnavailable(RuntimeError):
    pass


def _talipp():
    try:
        from talipp.indicators import BB, RSI
    except ImportError:  # the client may be installed alone
        raise StrategyUnavailable(
            "the built-in strategy needs the [strategy] extra: pip install 'tradowix-bot[strategy]'"
        ) from None
    return RSI, BB


def require() -> None:
    """Raise StrategyUnavailable now, before a command fetches data it could not use."""
    _talipp()


@dataclass(frozen=True)
class Signal:
    time: int  # open time of the bar whose close decided the signal
    direction: str | None  # CALL, PUT, or None when the indicators are exactly neutral
    confidence: float  # 0..1
    rsi: float
    percent_b: float

    def tradable(self, min_confidence: float) -> bool:
        return self.direction is not None and self.confidence >= min_confidence


def _clip(x: float) -> float:
    return max(-1.0, min(1.0, x))


def score(rsi: float, percent_b: float) -> float:
    return (_clip((50.0 - rsi) / 30.0) + _clip(0.5 - percent_b)) / 2.0


def signals(bars: Sequence[tuple]) -> list[Signal | None]:
    """One entry per bar (None during the warm-up); bars are `(time, o, h, l, c)` sorted."""
    rsi_cls, bb_cls = _talipp()
    closes = [float(b[4]) for b in bars]
    rsi = rsi_cls(RSI_PERIOD, input_values=closes)
    bands = bb_cls(BB_PERIOD, BB_STD, input_values=closes)
    out: list[Signal | None] = []
    for i, bar in enumerate(bars):
        r, band = rsi[i], bands[i]
        if r is None or band is None:
            out.append(None)
            continue
        width = band.ub - band.lb
        percent_b = 0.5 if width <= 0 else (closes[i] - band.lb) / width
        s = score(r, percent_b)
        direction = CALL if s > 0 else PUT if s < 0 else None
        out.append(Signal(int(bar[0]), direction, round(abs(s), 6), round(r, 3), round(percent_b, 4)))
    return out


def latest_signal(bars: Sequence[tuple]) -> Signal:
    """The signal at the close of the last bar; ValueError if there are too few bars."""
    if len(bars) < WARMUP:
        raise ValueError(f"need at least {WARMUP} bars for a signal, got {len(bars)}")
    # The indicators depend (weakly) on the past; a few hundred bars make them stable.
    last = signals(bars[-500:])[-1]
    assert last is not None
    return last


def validate_confidence(value: float) -> float:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"min-confidence must be between 0 and 1 (got {value})")
    return value
