"""Given raw upstream ticks, when they reach the bar builder, then only sane, in-order ticks shape bars."""

from __future__ import annotations

import pytest
from tradowix_bot.collector.bars import BadTick, MinuteBars, validate_tick

NOW = 1_750_000_000.0


@pytest.mark.parametrize(
    "price, ts_ms, reason",
    [
        ("1.2", NOW * 1000, "not a number"),
        (None, NOW * 1000, "not a number"),
        (True, NOW * 1000, "not a number"),
        (-1.5, NOW * 1000, "positive"),
        (0, NOW * 1000, "positive"),
        (float("nan"), NOW * 1000, "positive"),
        (1.2, "x", "timestamp is not a number"),
        (1.2, (NOW - 3600) * 1000, "in the past"),
        (1.2, (NOW + 3600) * 1000, "in the future"),
    ],
)
def test_bad_ticks_are_refused_with_a_reason(price, ts_ms, reason):
    with pytest.raises(BadTick, match=reason):
        validate_tick(price, ts_ms, NOW)


def test_open_is_first_tick_close_is_last_volume_counts_ticks_and_duplicates_and_late_ticks_are_dropped():
    m = MinuteBars("EURUSD-OTC")
    t0 = 1_750_000_020  # a minute start
    assert m.add(t0 + 1, 1.0) == (None, True)
    assert m.add(t0 + 2, 1.5) == (None, True)
    assert m.add(t0 + 2, 9.9) == (None, False)  # duplicate timestamp
    assert m.add(t0 + 1.5, 0.1) == (None, False)  # out of order
    assert m.add(t0 + 3, 0.8) == (None, True)
    closed, used = m.add(t0 + 61, 2.0)
    assert used and closed == (t0, 1.0, 1.5, 0.8, 0.8, 3)  # volume: the 3 ticks used
    assert m.bar == (t0 + 60, 2.0, 2.0, 2.0, 2.0, 1)
    assert m.dropped == 2


def test_a_minute_closes_on_time_and_a_straggler_amends_it_but_older_ticks_are_dropped():
    m = MinuteBars("EURUSD-OTC")
    t0 = 1_750_000_020
    m.add(t0 + 10, 1.0)
    assert m.close_due(t0 + 60.2, grace=0.5) is None
    assert m.close_due(t0 + 60.5, grace=0.5) == (t0, 1.0, 1.0, 1.0, 1.0, 1)
    # a tick of that minute delayed past the grace amends the closed bar (written again)
    assert m.add(t0 + 59.8, 1.3) == ((t0, 1.0, 1.3, 1.0, 1.3, 2), True)
    # a tick of an older minute is dropped
    assert m.add(t0 - 5, 5.0) == (None, False)
    # once the next minute has ticks, nothing can change the closed one
    m.add(t0 + 61, 2.0)
    m.last_ts = None
    assert m.add(t0 + 59.9, 9.0) == (None, False)
