"""Tick volume on the read side (shared contract): a stored 1m bar is `[t, o, h, l, c]` or
`[t, o, h, l, c, v]`; answers carry `"volume"` only when it is known; resampling sums it and
keeps it only when every 1m bar of the bucket has it; days stored before volume existed stay
readable; bytes at rest stay <= 20 per bar."""

from __future__ import annotations

import gzip
import json
import random

import boto3
from tradowix_bot.candles import Bar, as_dicts, parse_candle_text
from tradowix_bot.resample import resample
from tradowix_bot.server.store import CandleStore, decode_day, encode_day, object_key
from unit_helpers import T0, get, synthetic_bars

SYMBOL = "BTCUSD-OTC"


def with_volume(bars: list[tuple], seed: int = 7) -> list[tuple]:
    """The same bars with a tick count per minute, as the collector counts them (~1 tick/s)."""
    rng = random.Random(seed)
    return [(*b[:5], rng.randint(20, 120)) for b in bars]


def write_old_format_day(bucket: str, day: str, bars: list[tuple]) -> None:
    """A day object exactly as the store wrote it before volume existed (5-element rows)."""
    doc = {"symbol": SYMBOL, "day": day, "bars": [list(b[:5]) for b in bars]}
    boto3.client("s3").put_object(
        Bucket=bucket,
        Key=object_key(SYMBOL, day),
        Body=gzip.compress(json.dumps(doc).encode()),
        ContentEncoding="gzip",
    )


def test_resampling_sums_volume_and_drops_it_when_a_minute_lacks_it():
    # given: three 5m buckets: all minutes with volume, one minute without, none with
    full = [(T0 + 60 * i, 1.0, 2.0, 0.5, 1.5, 10 + i) for i in range(5)]
    partial = [(T0 + 300 + 60 * i, 1.0, 2.0, 0.5, 1.5, 7) for i in range(4)] + [
        (T0 + 540, 1.0, 2.0, 0.5, 1.5)
    ]
    none = [(T0 + 600 + 60 * i, 1.0, 2.0, 0.5, 1.5) for i in range(5)]
    # when: resampled to 5m and shaped for JSON
    out = as_dicts(resample(full + partial + none, 300))
    # then: the first bar sums its ticks; the others have no volume at all (not 0)
    assert out[0]["volume"] == sum(10 + i for i in range(5))
    assert "volume" not in out[1] and "volume" not in out[2]
    assert [b["time"] for b in out] == [T0, T0 + 300, T0 + 600]


def test_a_bar_whose_volume_is_unknown_is_stored_without_a_volume_element():
    # given: collector-style Bar tuples, one with a tick count and one without
    bars = [Bar(T0, 1.0, 2.0, 0.5, 1.5, 42), Bar(T0 + 60, 1.0, 2.0, 0.5, 1.5)]
    # when: encoded the way the store writes a day
    rows = json.loads(gzip.decompress(encode_day(SYMBOL, "2024-03-10", bars)))["bars"]
    # then: 6 elements with the count, 5 without (never a null volume)
    assert rows == [[T0, 1.0, 2.0, 0.5, 1.5, 42], [T0 + 60, 1.0, 2.0, 0.5, 1.5]]
    assert decode_day(encode_day(SYMBOL, "2024-03-10", bars))[0][5] == 42


def test_rest_serves_volume_and_old_days_without_it_stay_readable(api):
    # given: yesterday stored before volume existed, today with tick counts
    yesterday = synthetic_bars(T0 - 86400, 1440)
    write_old_format_day(api["CandlesBucket"], "2024-03-09", yesterday)
    today = with_volume(synthetic_bars(T0, 60))
    CandleStore(api["CandlesBucket"]).write(SYMBOL, today)
    # when: a partner reads both days, in 1m and in 1h
    minutes = get("/api/candles", {"symbol": SYMBOL, "start": T0 - 120, "end": T0 + 120}).json()
    hours = get("/api/candles", {"symbol": SYMBOL, "timeframe": 3600, "start": T0 - 3600}).json()
    # then: old bars have no volume key, new bars carry their tick count, 1h sums it
    assert [("volume" in c) for c in minutes["candles"]] == [False, False, True, True]
    assert minutes["candles"][2]["volume"] == today[0][5]
    assert "volume" not in hours["candles"][0]
    assert hours["candles"][1]["volume"] == sum(b[5] for b in today)


def test_original_candle_files_may_carry_a_volume_and_bad_volumes_are_refused():
    # given: a file in the original format with an optional volume
    text = '[{"time": 60, "open": 1, "high": 2, "low": 0.5, "close": 1.5, "volume": 12},\n {"time": 120, "open": 1, "high": 2, "low": 0.5, "close": 1.5}]'
    bars = parse_candle_text(text, "f.json")
    assert bars[0].volume == 12 and bars[1].volume is None
    # when / then: a negative or fractional volume names the file and line
    for bad in ("-1", "1.5", '"9"'):
        broken = text.replace('"volume": 12', f'"volume": {bad}')
        try:
            parse_candle_text(broken, "f.json")
        except Exception as exc:  # noqa: BLE001 - asserting on the message
            assert "f.json:1" in str(exc) and "volume" in str(exc)
        else:
            raise AssertionError(f"volume {bad} was accepted")


def test_bytes_at_rest_with_volume_stay_under_20_per_bar(aws_env):
    # given: a realistic full day (synthetic market prices) with a tick count per minute
    from tradowix_bot.collector.synthetic_market import SyntheticMarket

    bars = with_volume(SyntheticMarket().bars(SYMBOL, T0, T0 + 86400))
    # when: the store writes the day
    CandleStore(aws_env["CandlesBucket"]).write(SYMBOL, bars)
    data = (
        boto3.client("s3")
        .get_object(Bucket=aws_env["CandlesBucket"], Key=object_key(SYMBOL, "2024-03-10"))["Body"]
        .read()
    )
    # then: every bar keeps its volume and the object stays compact
    assert [b[5] for b in decode_day(data)] == [b[5] for b in bars]
    assert len(data) / len(bars) <= 20, f"{len(data) / len(bars):.1f} B/bar"
