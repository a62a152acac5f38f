"""Given the 1m bars known so far of a bucket (the current, forming one, or any other), when its
bar is built by `resample.bucket_bar` (the one function the live publisher and the owner's live
stream use, and the rule REST's resampling applies), then it is the bar a partner sees in REST
candles for that bucket: open of the first minute, highest high, lowest low, close of the last,
summed volume only when every minute has one."""

from __future__ import annotations

import random

import pytest
from tradowix_bot.resample import bucket_bar, bucket_start, ends_bucket, resample

T0 = 1_700_000_100  # the start of a 5-minute bucket (1_700_000_100 % 300 == 0)


def minute(i: int, o: float, h: float, lo: float, c: float, v: int | None = None) -> tuple:
    return (T0 + 60 * i, o, h, lo, c) if v is None else (T0 + 60 * i, o, h, lo, c, v)


def test_the_forming_bucket_is_built_from_the_minutes_so_far_in_any_order():
    # given 3 of the 5 minutes of the current 5m bucket, out of order, and a minute of the
    # previous bucket still held
    minutes = [minute(2, 12, 15, 11, 14, 4), minute(0, 10, 11, 9, 10.5, 2), minute(1, 10.5, 13, 8, 12, 3)]
    held = [(T0 - 60, 1, 1, 1, 1, 1), *minutes]
    # when its bar is built
    bar = bucket_bar(held, 300, T0)
    # then it opens at the first minute, spans the extremes, closes at the last, sums volume
    assert bar == (T0, 10, 15, 8, 14, 9)


def test_volume_is_left_out_when_a_minute_has_none():
    bar = bucket_bar([minute(0, 10, 11, 9, 10, 2), minute(1, 10, 12, 9, 11)], 300, T0)
    assert bar == (T0, 10, 12, 9, 11)


def test_a_bucket_without_minutes_has_no_bar():
    assert bucket_bar([minute(5, 1, 1, 1, 1)], 300, T0) is None
    assert bucket_bar([], 60, T0) is None


def test_it_is_the_bar_rest_resampling_makes_of_the_same_minutes():
    # given random 1m series with gaps, for several timeframes
    rng = random.Random(7)
    for timeframe in (60, 120, 300, 900, 3600, 14400):
        t, bars = T0, []
        for _ in range(200):
            t += 60 * rng.choice([1, 1, 1, 2, 5, 61])
            o, c = rng.uniform(1, 2), rng.uniform(1, 2)
            bars.append((t, o, max(o, c) + 0.1, min(o, c) - 0.1, c, rng.randint(1, 9)))
        # when every bucket's bar is built on its own, then each equals REST's resampled bar
        assert [bucket_bar(bars, timeframe, b[0]) for b in resample(bars, timeframe)] == resample(
            bars, timeframe
        )


@pytest.mark.parametrize(
    "minute_index, timeframe, ends",
    [(4, 300, True), (3, 300, False), (0, 300, False), (0, 60, True), (59, 3600, False)],
)
def test_only_the_last_minute_of_a_bucket_closes_it(minute_index, timeframe, ends):
    assert ends_bucket(T0 + 60 * minute_index, timeframe) is ends


def test_buckets_are_aligned_to_the_epoch():
    assert [bucket_start(T0 + s, 300) for s in (0, 59, 299, 300)] == [T0, T0, T0, T0 + 300]
    assert bucket_start(T0, 3600) == T0 - 900  # 4h, 1h... buckets start on the hour, not at T0
