"""Resampling 1m bars to any multiple of a minute, in one pass over sorted bars.

Buckets are aligned to the unix epoch (4h bars start at 00:00, 04:00 … UTC). A bucket
holds open of its first bar, max high, min low, close of its last; its time is the
bucket start; an empty bucket produces no bar.
"""

from __future__ import annotations

from collections.abc import Sequence

from .errors import BadRequest

BASE_TIMEFRAME = 60
COMMON_TIMEFRAMES = (60, 120, 180, 300, 600, 900, 1800, 3600, 14400)


def validate_timeframe(timeframe: int | None) -> int:
    if timeframe is None:
        return BASE_TIMEFRAME
    if timeframe < BASE_TIMEFRAME or timeframe % BASE_TIMEFRAME:
        raise BadRequest(
            f"timeframe must be a whole number of seconds, at least 60 and a multiple of 60 (got {timeframe})",
            code="invalid_timeframe",
        )
    if timeframe > 7 * 86400:
        raise BadRequest("timeframe must be at most 604800 seconds (1 week)", code="invalid_timeframe")
    return timeframe


def resample(bars: Sequence[tuple], timeframe: int) -> list[tuple]:
    """Resample sorted 1m bars `(time, o, h, l, c)` to `timeframe` seconds."""
    if timeframe == BASE_TIMEFRAME:
        return list(bars)
    out: list[tuple] = []
    bucket = None
    o = h = lo = c = 0.0
    for t, bo, bh, bl, bc, *_ in bars:  # a stored bar may carry its volume (6th)
        start = t - t % timeframe
        if start != bucket:
            if bucket is not None:
                out.append((bucket, o, h, lo, c))
            bucket, o, h, lo, c = start, bo, bh, bl, bc
        else:
            if bh > h:
                h = bh
            if bl < lo:
                lo = bl
            c = bc
    if bucket is not None:
        out.append((bucket, o, h, lo, c))
    return out
