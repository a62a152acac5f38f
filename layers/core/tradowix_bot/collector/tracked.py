"""What the collector knows about one symbol it writes: one object per leased symbol.

It is created when the lease is won and dropped whole when the lease goes, so nothing about
a symbol outlives its lease or has to be cleared by hand.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from ..candles import MINUTE
from .bars import Bar, MinuteBars

NEVER = math.inf


def minute_of(ts: float) -> int:
    return int(ts) - int(ts) % MINUTE


@dataclass(frozen=True)
class RepairJob:
    """Fill the symbol's history up to `end` (exclusive) once the clock reaches `due`."""

    due: float
    end: int


@dataclass
class Problem:
    """Why a symbol is not served as it should be: a short code partners may see, and the
    detail (scrubbed of secrets) for the owner."""

    code: str
    detail: str


@dataclass
class TrackedSymbol:
    name: str
    lease_until: float
    bars: MinuteBars = field(init=False)
    linked: bool = False
    # The stream's first valid tick since the link says from which minute on the ticks are
    # whole; until then (and while unlinked) no minute is.
    awaiting_first_tick: bool = False
    complete_from: float = NEVER
    partial: dict[int, Bar] = field(default_factory=dict)  # minutes seen only in part
    repair: RepairJob | None = None
    repairing: bool = False
    retry_at: float = 0.0  # a failed repair waits until then
    failures: int = 0  # failed repairs in a row
    backfilled: bool = False  # the first repair since the lease is done
    last_tick: float | None = None
    rejected: int = 0
    problem: Problem | None = None
    corrupt_days: set[str] = field(default_factory=set)  # found, not yet rebuilt
    rebuilt_days: set[str] = field(default_factory=set)
    skipped: dict[str, int] = field(default_factory=dict)  # history bars not written, by reason

    def __post_init__(self) -> None:
        self.bars = MinuteBars(self.name)

    def on_linked(self, at: float) -> None:
        """The stream (re)started at `at`: repair at once up to that minute."""
        self.linked = True
        self.complete_from = NEVER
        self.awaiting_first_tick = True
        self.repair = RepairJob(0.0, minute_of(at))

    def on_unlinked(self) -> None:
        """The stream stopped: the forming bar (and a bar the clock closed that nothing proved
        whole since) saw only part of their ticks."""
        self.linked = False
        for bar in self.bars.reset():
            self.partial[bar.time] = bar
        self.complete_from = NEVER
        self.awaiting_first_tick = False

    def on_first_tick(self, ts: float) -> None:
        """The first valid tick since the link: its minute is partial, the next ones whole."""
        self.awaiting_first_tick = False
        minute = minute_of(ts)
        earlier = self.partial.pop(minute, None)
        if earlier is not None:  # a link back within the minute it dropped in
            self.bars.continue_from(earlier)
        self.complete_from = minute + MINUTE
        if self.repair is None:  # else the running repair schedules this one when done
            self.repair = RepairJob(self.complete_from, int(self.complete_from))

    def is_whole(self, minute: int) -> bool:
        return minute >= self.complete_from

    def repair_done(self, job: RepairJob) -> None:
        """`job` succeeded: partial minutes before its end are settled; the partial minute
        of the stream's start is repaired once it is over."""
        self.partial = {t: b for t, b in self.partial.items() if t >= job.end}
        self.failures = 0
        self.backfilled = True
        if self.repair == job:
            if job.end < self.complete_from < NEVER:
                self.repair = RepairJob(self.complete_from, int(self.complete_from))
            else:
                self.repair = None
