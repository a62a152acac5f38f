"""Given the synthetic market (the local stack's and the tests' data source), its history and
its live ticks must agree: a week of history is built with a shortcut (only open, high, low and
close are priced), and a partner comparing the stored bar with the bar the live ticks make must
see the same numbers."""

from __future__ import annotations

from tradowix_bot.candles import Bar
from tradowix_bot.collector.synthetic_market import ORIGIN, SyntheticMarket
from tradowix_bot.symbols import DEFAULT_SYMBOLS


def bar_from_ticks(minute_start: int, ticks: list[tuple[float, float]]) -> Bar:
    prices = [p for _, p in ticks]
    return Bar(minute_start, prices[0], max(prices), min(prices), prices[-1])


def test_every_history_bar_equals_the_bar_its_live_ticks_make():
    # given a market and three hours of minutes for every default symbol
    market = SyntheticMarket()
    start = ORIGIN + 900 * 86400 + 7 * 3600
    for info in DEFAULT_SYMBOLS:
        # when the history is built
        history = market.bars(info.symbol, start, start + 3 * 3600)
        # then each bar is exactly the one the ticks of its minute give
        assert len(history) == 180
        for bar in history:
            assert bar == bar_from_ticks(bar.time, market.minute_ticks(info.symbol, bar.time)), (
                info.symbol,
                bar,
            )


def test_a_forming_minute_is_built_from_the_ticks_before_the_cut():
    # given a minute and a cut 20 s into it
    market = SyntheticMarket()
    symbol = DEFAULT_SYMBOLS[0].symbol
    minute = ORIGIN + 123 * 86400
    ticks = [tk for tk in market.minute_ticks(symbol, minute) if tk[0] < minute + 20]
    # when the forming bar is asked for, then it is made of those ticks only
    assert market.bar(symbol, minute, until=minute + 20) == bar_from_ticks(minute, ticks)
    assert market.bar(symbol, minute, until=minute) is None
