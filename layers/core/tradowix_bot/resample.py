"""Resampling 1m bars to any multiple of a minute, in one pass over sorted bars.

Buckets are aligned to the unix epoch (4h bars start at 00:00, 04:00 … UTC). A bucket
holds open of its first bar, max high, min low, close of its last; its time is the
bucket start; an empty bucket produces no bar. Volume is summed, and a bucket has a volume
only when every 1m bar in it has one (a partly known sum would understate it).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence

from .errors import BadRequest

BASE_TIMEFRAME = 60
MAX_TIMEFRAME = 7 * 86400
COMMON_TIMEFRAMES = (60, 120, 180, 300, 600, 900, 1800, 3600, 14400)


def validate_timeframe(timeframe) -> int:
    """The one timeframe rule (REST, UDF, the WebSocket's messages, the CLI): whole seconds, a
    multiple of 60 from 60 to a week; None is the default, 60. Else BadRequest (`invalid_timeframe`)."""
    if timeframe is None:
        return BASE_TIMEFRAME
    if isinstance(timeframe, bool) or not isinstance(timeframe, int):
        shown = json.dumps(timeframe, separators=(",", ":"), ensure_ascii=False, default=str)[:40]
        raise BadRequest(
            f"timeframe must be whole seconds, e.g. 300 for 5 minutes (got {shown})", code="invalid_timeframe"
        )
    if timeframe < BASE_TIMEFRAME or timeframe % BASE_TIMEFRAME:
        raise BadRequest(
            f"timeframe must be a whole number of seconds, at least 60 and a multiple of 60 (got {timeframe})",
            code="invalid_timeframe",
        )
    if timeframe > MAX_TIMEFRAME:
        raise BadRequest("timeframe must be at most 604800 seconds (1 week)", code="invalid_timeframe")
    return timeframe


def resample(bars: Sequence[tuple], timeframe: int) -> list[tuple]:
    """Resample sorted 1m bars `(time, o, h, l, c[, volume])` to `timeframe` seconds."""
    if timeframe == BASE_TIMEFRAME:
        return list(bars)
    out: list[tuple] = []
    bucket = None
    o = h = lo = c = 0.0
    vol = None
    for b in bars:
        t = b[0]
        start = t - t % timeframe
        if start != bucket:
            if bucket is not None:
                out.append((bucket, o, h, lo, c) if vol is None else (bucket, o, h, lo, c, vol))
            bucket, o, h, lo, c = start, b[1], b[2], b[3], b[4]
            vol = b[5] if len(b) > 5 else None
        else:
            if b[2] > h:
                h = b[2]
            if b[3] < lo:
                lo = b[3]
            c = b[4]
            if vol is not None:
                vol = vol + b[5] if len(b) > 5 and b[5] is not None else None
    if bucket is not None:
        out.append((bucket, o, h, lo, c) if vol is None else (bucket, o, h, lo, c, vol))
    return out


def bucket_start(t: int, timeframe: int) -> int:
    """The start of the (epoch-aligned) bucket of `timeframe` seconds that holds time `t`."""
    t = int(t)
    return t - t % timeframe


def ends_bucket(minute: int, timeframe: int) -> bool:
    """Whether the 1m bar starting at `minute` is the last minute of its bucket (its close closes
    the bucket's bar)."""
    return int(minute) + BASE_TIMEFRAME == bucket_start(minute, timeframe) + timeframe


def bucket_bar(minutes: Iterable[tuple], timeframe: int, bucket: int) -> tuple | None:
    """The bar of the bucket starting at `bucket` as it stands, from the 1m bars given (any order,
    one per minute; those outside the bucket are ignored): the current (forming) bucket's bar
    for the live stream, the same bar `resample` makes of those minutes. None: no minute yet."""
    inside = sorted((b for b in minutes if bucket <= b[0] < bucket + timeframe), key=lambda b: b[0])
    return resample(inside, timeframe)[0] if inside else None
