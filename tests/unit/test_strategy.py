"""Given candle series after a sell-off, a rally or too few bars, when the built-in strategy runs,
then direction and confidence follow the documented mean-reversion logic, use no future bar,
and stay between 0 and 1."""

from __future__ import annotations

import random

import pytest
from tradowix_bot.candles import Bar, as_dicts
from tradowix_bot.strategy import builtin as strategy
from tradowix_bot.strategy.live_signals import LiveSignals


def series(closes, start=1_710_000_000, tf=60):
    bars, prev = [], closes[0]
    for i, c in enumerate(closes):
        bars.append(Bar(start + i * tf, prev, max(prev, c), min(prev, c), c))
        prev = c
    return bars


def random_walk(n, seed=1):
    rng, x, out = random.Random(seed), 100.0, []
    for _ in range(n):
        x *= 1 + rng.gauss(0, 0.001)
        out.append(round(x, 4))
    return out


def test_after_a_sell_off_it_calls_and_after_a_rally_it_puts():
    flat = [100.0 + 0.01 * (i % 2) for i in range(40)]
    sell_off = series(flat + [100 - 0.3 * k for k in range(1, 8)])
    rally = series(flat + [100 + 0.3 * k for k in range(1, 8)])
    down, up = strategy.latest_signal(sell_off), strategy.latest_signal(rally)
    assert down.direction == "CALL" and up.direction == "PUT"
    assert down.confidence > 0.8 and up.confidence > 0.8  # RSI near 0/100, close beyond the band
    assert down.rsi < 20 and down.percent_b < 0


def test_confidence_is_always_between_0_and_1():
    sigs = [s for s in strategy.signals(series(random_walk(3000))) if s is not None]
    assert len(sigs) == 3000 - strategy.WARMUP + 1
    assert all(0.0 <= s.confidence <= 1.0 for s in sigs)
    assert {s.direction for s in sigs} == {"CALL", "PUT"}


def test_no_look_ahead_a_signal_uses_only_bars_up_to_its_own():
    bars = series(random_walk(300, seed=3))
    full = strategy.signals(bars)
    for k in (strategy.WARMUP, 100, 299):
        assert strategy.signals(bars[:k])[-1] == full[k - 1]


def test_too_few_bars_is_a_clear_error():
    with pytest.raises(ValueError, match=f"need at least {strategy.WARMUP} bars"):
        strategy.latest_signal(series(random_walk(strategy.WARMUP - 1)))
    assert strategy.signals(series(random_walk(5))) == [None] * 5


def test_live_signals_one_per_closed_bar_whatever_the_server_says():
    bars = series(random_walk(60))
    live = LiveSignals(60)
    live.load("X", as_dicts(bars[:50]))

    def msg(bar, **extra):
        return {"type": "bar", "symbol": "X", "timeframe": 60, "candle": as_dicts([bar])[0], **extra}

    # forming updates signal nothing; the closing update signals once (our server's "closed")
    assert live.on_message(msg(bars[50], closed=False)) == []
    closed = live.on_message(msg(bars[50], closed=True))
    assert [c.bar.time for c in closed] == [bars[50].time]
    assert closed[0].signal == strategy.signals(bars[:51])[-1]
    assert live.on_message(msg(bars[50], closed=True)) == []  # a duplicate (e.g. renewal) is ignored
    # an original server without "closed": the next bar's first update closes the previous bar
    live2 = LiveSignals(60)
    live2.load("X", as_dicts(bars[:50]))
    assert live2.on_message(msg(bars[50])) == []
    assert [c.bar.time for c in live2.on_message(msg(bars[51]))] == [bars[50].time]
    # other timeframes and other message types are ignored
    assert live.on_message({**msg(bars[51], closed=True), "timeframe": 300}) == []
    assert live.on_message({"type": "timing", "symbol": "X"}) == []
