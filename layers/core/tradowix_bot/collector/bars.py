"""Ticks → 1-minute bars. Open is the first tick of the minute, close the last, volume the
number of ticks (FX "tick volume": the upstream has no traded volume).

Every tick is checked before it can touch a bar: the price must be a positive finite
number and the timestamp near the clock (a feed replaying stale or future data must not
rewrite history). Duplicate and out-of-order ticks are dropped, so a bar never moves
backwards. A tick that arrives just after its minute closed (and before any tick of the
next minute) amends that closed bar, which is then written again; older ticks are dropped.
"""

from __future__ import annotations

import math
from typing import NamedTuple

from ..candles import MINUTE

# How far a tick's timestamp may be from the collector's clock (seconds).
MAX_TICK_AGE = 120.0
MAX_TICK_LEAD = 10.0


class Bar(NamedTuple):
    """A 1m bar built from ticks: the stored `[t, o, h, l, c, v]`. Only a bar built from all
    of its minute's ticks is stored with its volume; others lose it (`ohlc`)."""

    time: int
    open: float
    high: float
    low: float
    close: float
    volume: int

    def ohlc(self) -> tuple:
        return tuple(self[:5])


class BadTick(ValueError):
    """A tick that cannot be used; the message says why."""


def validate_tick(price, timestamp_ms, now: float, max_age: float = MAX_TICK_AGE) -> tuple[float, float]:
    """Return (unix seconds, price) of a raw upstream tick, or raise BadTick."""
    if isinstance(price, bool) or not isinstance(price, int | float):
        raise BadTick(f"price is not a number: {price!r}")
    if not math.isfinite(price) or price <= 0:
        raise BadTick(f"price must be positive and finite: {price!r}")
    if isinstance(timestamp_ms, bool) or not isinstance(timestamp_ms, int | float):
        raise BadTick(f"timestamp is not a number: {timestamp_ms!r}")
    if not math.isfinite(timestamp_ms):
        raise BadTick(f"timestamp is not finite: {timestamp_ms!r}")
    ts = timestamp_ms / 1000.0
    if ts < now - max_age:
        raise BadTick(f"timestamp {ts:.3f} is {now - ts:.0f}s in the past")
    if ts > now + MAX_TICK_LEAD:
        raise BadTick(f"timestamp {ts:.3f} is {ts - now:.0f}s in the future")
    return ts, float(price)


class MinuteBars:
    """The forming bar of one symbol. `add` and `close_due` hand back bars that closed."""

    def __init__(self, symbol: str):
        self.symbol = symbol
        self.bar: Bar | None = None
        self.last_ts: float | None = None
        self.closed_through = 0  # end of the newest closed minute: older ticks are late
        self.dropped = 0
        self.amended = 0
        self.last_closed: Bar | None = None

    def add(self, ts: float, price: float) -> tuple[Bar | None, bool]:
        """Apply one validated tick. Returns (bar closed by it or None, whether it was used)."""
        if self.last_ts is not None and ts <= self.last_ts:
            self.dropped += 1  # duplicate or out of order
            return None, False
        minute = int(ts) - int(ts) % MINUTE
        if minute < self.closed_through:
            last = self.last_closed
            if last is not None and minute == last.time and self.bar is None:
                # A straggler of the minute just closed (network delay past the grace):
                # amend that bar; the caller writes it again, replacing the minute.
                self.last_ts = ts
                self.last_closed = Bar(
                    last.time, last.open, max(last.high, price), min(last.low, price), price, last.volume + 1
                )
                self.amended += 1
                return self.last_closed, True
            self.dropped += 1  # late: its minute is already closed
            return None, False
        self.last_ts = ts
        closed = None
        if self.bar is not None and minute != self.bar.time:
            closed = self._close()
        if self.bar is None:
            self.bar = Bar(minute, price, price, price, price, 1)
        else:
            b = self.bar
            self.bar = Bar(b.time, b.open, max(b.high, price), min(b.low, price), price, b.volume + 1)
        return closed, True

    def close_due(self, now: float, grace: float) -> Bar | None:
        """Close the forming bar once its minute is over (plus `grace` for in-flight ticks)."""
        if self.bar is not None and now >= self.bar.time + MINUTE + grace:
            return self._close()
        return None

    def _close(self) -> Bar:
        closed, self.bar = self.bar, None
        self.closed_through = closed.time + MINUTE
        self.last_closed = closed
        return closed

    @property
    def unproven_closed(self) -> Bar | None:
        """The last closed bar if the clock closed it and no tick of a later minute came since."""
        return self.last_closed if self.bar is None else None

    def reset(self) -> list[Bar]:
        """The link dropped: forget the forming bar. Returns the bars not known to be whole, for
        the caller to mark partial: the forming bar, and the last closed bar if the clock closed
        it and no later tick came since (its tail may have been in flight on the dead link; a
        tick of a later minute would have proved it whole, as a link's ticks come in order).

        The forming bar's minute stays open: a link back within that minute goes on building
        it (see `continue_from`), and history replaces it once the minute is over."""
        unproven = [b for b in (self.unproven_closed, self.bar) if b is not None]
        self.bar = None
        self.last_closed = None  # nothing after a dropped link may amend a bar
        return unproven

    def continue_from(self, earlier: Bar) -> None:
        """The forming bar goes on from `earlier`: the same minute's bar as it stood when the
        link dropped (its open and extremes), so a fast reconnect does not restart the minute."""
        b = self.bar
        if b is not None and b.time == earlier.time:
            self.bar = Bar(
                b.time,
                earlier.open,
                max(b.high, earlier.high),
                min(b.low, earlier.low),
                b.close,
                b.volume + earlier.volume,  # not all of them: the bar stays partial
            )
