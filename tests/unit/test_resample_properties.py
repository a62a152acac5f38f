"""Given random 1m series with gaps and random timeframes (multiples of 60 up to a day), when
they are resampled through the same MarketData.candles the API calls (with `limit`, `start`,
`end` and `last_closed`), then the answer equals an independent oracle: pandas `resample` with
epoch-aligned bins (pandas is used in the tests only)."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tradowix_bot.errors import BadRequest
from tradowix_bot.resample import resample, validate_timeframe
from tradowix_bot.server.authn import OPEN
from tradowix_bot.server.market import MarketData
from tradowix_bot.server.store import StoredRange

BASE = 1_700_000_040  # a minute, deliberately not aligned to hours or days


def oracle(bars: list[tuple], timeframe: int) -> list[tuple]:
    if not bars:
        return []
    frame = pd.DataFrame(bars, columns=["time", "open", "high", "low", "close"])
    frame.index = pd.to_datetime(frame["time"], unit="s")
    out = (
        frame.resample(f"{timeframe}s", origin="epoch", label="left", closed="left")
        .agg({"open": "first", "high": "max", "low": "min", "close": "last"})
        .dropna()
    )
    times = (out.index.as_unit("s").asi8).tolist()
    return [(t, *row) for t, row in zip(times, out.itertuples(index=False, name=None), strict=True)]


@st.composite
def series(draw, max_bars: int = 300):
    """Sorted 1m bars with random gaps (sometimes hours long) and consistent OHLC."""
    n = draw(st.integers(0, max_bars))
    gaps = draw(st.lists(st.sampled_from([1, 1, 1, 1, 2, 3, 7, 59, 61, 240, 1441]), min_size=n, max_size=n))
    start = BASE + 60 * draw(st.integers(0, 2000))
    prices = draw(st.lists(st.integers(1, 500), min_size=2 * n, max_size=2 * n))
    wicks = draw(st.lists(st.integers(0, 9), min_size=2 * n, max_size=2 * n))
    bars, t = [], start
    for i in range(n):
        t += 60 * gaps[i]
        o, c = prices[2 * i] / 4, prices[2 * i + 1] / 4
        bars.append((t, o, max(o, c) + wicks[2 * i] / 8, min(o, c) - wicks[2 * i + 1] / 8 - 0.125, c))
    return bars


timeframes = st.one_of(
    st.integers(1, 240).map(lambda k: 60 * k),  # every multiple of 60 up to 4h
    st.sampled_from([300, 3600, 14400, 21600, 86400]),
)


class MemoryStore:
    """The CandleStore.read_range contract, over a list (bars None when the symbol has no data)."""

    def __init__(self, bars):
        self.bars = bars

    def read_range(self, symbol, start=None, end=None, *, with_bounds=False):
        if not self.bars:
            return StoredRange(None)
        lo = start if start is not None else 0
        hi = end if end is not None else 1 << 62
        inside = [b for b in self.bars if lo <= b[0] < hi]
        return StoredRange(inside, (("memory", "1"),), self.bars[0][0], self.bars[-1][0])


@settings(max_examples=150, deadline=None)
@given(bars=series(), timeframe=timeframes)
def test_resample_matches_pandas(bars, timeframe):
    assert resample(bars, timeframe) == oracle(bars, timeframe)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    bars=series().filter(bool),
    timeframe=timeframes,
    limit=st.none() | st.integers(1, 60),
    start_at=st.none() | st.floats(-0.1, 1.1),
    end_at=st.none() | st.floats(-0.1, 1.1),
    now_offset=st.integers(-7200, 7200),
)
def test_candles_answer_matches_pandas(bars, timeframe, limit, start_at, end_at, now_offset):
    # given: a series, a range picked inside (or just outside) it, and a clock near its end
    first, last = bars[0][0], bars[-1][0]

    def point(at):
        return None if at is None else int(first + at * (last - first + 60))

    start, end = point(start_at), point(end_at)
    now = last + now_offset
    market = MarketData(MemoryStore(bars), state=None, clock=lambda: now)
    # when
    answer = market.candles(OPEN, "BTCUSD-OTC", timeframe, limit, start, end)
    # then: the oracle's bars, filtered by bucket time, limited after resampling
    expected = [
        b for b in oracle(bars, timeframe) if (start is None or b[0] >= start) and (end is None or b[0] < end)
    ]
    if limit is not None:
        expected = expected[-limit:]
    got = [(c["time"], c["open"], c["high"], c["low"], c["close"]) for c in answer["candles"]]
    assert got == expected
    assert answer["count"] == len(expected)
    assert answer["timeframe"] == timeframe and answer["base_timeframe"] == 60
    assert answer["last_closed"] == (not expected or expected[-1][0] + timeframe <= now)


def follow_next(market: MarketData, symbol: str, **query) -> list[dict]:
    """Every answer a client gets by following `next` from the first query until has_more is false."""
    answers = [market.candles(OPEN, symbol, **query)]
    while answers[-1]["has_more"]:
        link = urlsplit(answers[-1]["next"])
        assert link.path == "/api/candles" and not link.netloc  # a relative URL of this API
        params = dict(parse_qsl(link.query))
        assert params.pop("symbol") == symbol
        answers.append(market.candles(OPEN, symbol, **{k: int(v) for k, v in params.items()}))
        assert len(answers) <= 1000
    assert answers[-1]["next"] is None
    return answers


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    bars=series().filter(bool),
    timeframe=timeframes,
    size=st.integers(1, 40),
    limit=st.none() | st.integers(1, 120),
    direction=st.sampled_from(["forward", "backward"]),
    start_at=st.none() | st.floats(-0.1, 1.1),
    end_at=st.none() | st.floats(-0.1, 1.1),
)
def test_following_next_yields_every_bar_of_the_range_exactly_once(
    bars, timeframe, size, limit, direction, start_at, end_at
):
    # given: a series and a range inside (or just outside) it
    first, last = bars[0][0], bars[-1][0]

    def point(at):
        return None if at is None else int(first + at * (last - first + 60))

    start, end = point(start_at), point(end_at)
    market = MarketData(MemoryStore(bars), state=None, clock=lambda: last + 3600)
    expected = [
        b for b in oracle(bars, timeframe) if (start is None or b[0] >= start) and (end is None or b[0] < end)
    ]
    # when: a client pages forward with page_size (limit, if any, first narrows the range to
    # its last bars), or backward with limit alone, following `next` to the end
    if direction == "forward":
        answers = follow_next(
            market, "BTCUSD-OTC", timeframe=timeframe, page_size=size, limit=limit, start=start, end=end
        )
        if limit is not None:
            expected = expected[-limit:]
        pages = [a["candles"] for a in answers]
    else:
        answers = follow_next(market, "BTCUSD-OTC", timeframe=timeframe, limit=size, start=start, end=end)
        pages = [a["candles"] for a in reversed(answers)]
    # then: every bar of the range once, in order, no page larger than asked, and the bounds
    got = [(c["time"], c["open"], c["high"], c["low"], c["close"]) for page in pages for c in page]
    assert got == expected
    assert all(len(page) <= size for page in pages)
    assert all(a["has_more"] for a in answers[:-1]) and not answers[-1]["has_more"]
    assert {(a["available_from"], a["available_to"]) for a in answers} == {(first, last)}


def test_a_range_that_ends_before_it_starts_is_empty_not_an_error():
    # given: stored bars; when: start is not before end (a valid query per the published schema)
    bars = [(BASE + 60 * i, 1.0, 2.0, 0.5, 1.5) for i in range(10)]
    answer = MarketData(MemoryStore(bars), state=None).candles(
        OPEN, "BTCUSD-OTC", 60, start=BASE + 300, end=BASE
    )
    # then: an empty range, said so, with the stored bounds
    assert answer["candles"] == [] and answer["count"] == 0
    assert answer["has_more"] is False and answer["next"] is None
    assert (answer["available_from"], answer["available_to"]) == (BASE, BASE + 540)


def test_four_hour_bars_start_at_epoch_aligned_hours():
    # 2024-03-10 01:00 UTC .. 09:00 UTC: buckets at 00:00, 04:00, 08:00
    t0 = 1_710_032_400
    bars = [(t0 + 60 * i, 1.0, 2.0, 0.5, 1.5) for i in range(8 * 60)]
    assert [b[0] % 86400 for b in resample(bars, 14400)] == [0, 4 * 3600, 8 * 3600]


@pytest.mark.parametrize("bad", [0, 30, 90, 61, -60, 7 * 86400 + 60])
def test_timeframes_that_are_not_whole_minutes_are_refused(bad):
    with pytest.raises(BadRequest) as info:
        validate_timeframe(bad)
    assert info.value.code == "invalid_timeframe"


def test_default_timeframe_is_one_minute():
    assert validate_timeframe(None) == 60
