"""Gap repair: what a symbol's stored history lacks, filled from the source's history pages.

A repair covers every minute from the newest stored bar (or the backfill floor on an empty
store) up to the job's end, plus the minutes seen only in part (around a dropped link, a
stream's first minute), which history replaces. A partial minute is kept only where history
has nothing for it. Bars the ticks already closed whole are never replaced by history.

A stored day object that cannot be decoded is rebuilt: what history has for that day, and
whatever whole bars can still be read from the damaged object where history does not reach.

History the source holds but the repair does not write is counted by reason (`skipped`),
for sources that know what they hold (replay files).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from ..candles import MINUTE, valid_bar
from ..server.store import DAY, CandleStore, day_start
from .clock import Clock
from .sources import Source
from .tracked import RepairJob, TrackedSymbol, minute_of


@dataclass
class RepairResult:
    start: int
    end: int
    bars: list[tuple] = field(default_factory=list)  # missing minutes (a waiting bar of the minute wins)
    replaced: list[tuple] = field(default_factory=list)  # partial minutes: history's version wins
    rebuilt: dict[str, list[tuple]] = field(default_factory=dict)  # corrupt day → its bars
    skipped: dict[str, int] = field(default_factory=dict)

    @property
    def written(self) -> int:
        return len(self.bars) + len(self.replaced) + sum(len(b) for b in self.rebuilt.values())


async def page_history(source: Source, symbol: str, start: int, end: int) -> dict[int, tuple]:
    """The source's valid bars with start <= time < end, paged newest first."""
    history: dict[int, tuple] = {}
    older = end
    while older > start:
        minutes = int(min(source.history_page_minutes, (older - start) // MINUTE))
        page = await source.history(symbol, older, minutes)
        page = [tuple(b) for b in page if valid_bar(b) and start <= b[0] < older]
        if not page:
            break
        for b in page:
            history.setdefault(int(b[0]), b)
        older = min(int(b[0]) for b in page)
    return history


class GapRepair:
    def __init__(self, source: Source, store: CandleStore, clock: Clock, *, backfill_days: float):
        self.source = source
        self.store = store
        self.clock = clock
        self.backfill_days = backfill_days

    async def run(self, tracked: TrackedSymbol, job: RepairJob) -> RepairResult:
        symbol = tracked.name
        floor = minute_of(self.clock.now() - self.backfill_days * DAY)
        last = await asyncio.to_thread(self.store.last_bar_time, symbol)
        start = floor if last is None else max(floor, last + MINUTE)
        partial = dict(tracked.partial)
        in_range = {t: b for t, b in partial.items() if t < job.end}
        if in_range:
            start = min(start, min(in_range))
        history = await page_history(self.source, symbol, start, job.end)
        result = RepairResult(start, job.end)
        for t in sorted(history):
            if t in in_range:
                result.replaced.append(history[t])
            elif last is None or t > last:
                result.bars.append(history[t])
        for t, bar in sorted(in_range.items()):
            if start <= t and t not in history:
                result.bars.append(tuple(bar[:5]))  # the upstream has nothing better for that minute
        for day in sorted(tracked.corrupt_days):
            result.rebuilt[day] = await self._rebuild(symbol, day, floor, job.end)
        result.skipped = self._skipped(symbol, floor, last, job.end)
        return result

    async def _rebuild(self, symbol: str, day: str, floor: int, end: int) -> list[tuple]:
        """The day's bars from history (within the backfill window: older ones are due for
        retention anyway), and the whole bars still readable where history has none."""
        first = day_start(day)
        history = await page_history(self.source, symbol, max(first, floor), min(first + DAY, end))
        salvaged = await asyncio.to_thread(self.store.salvage, symbol, day)
        bars = {int(b[0]): tuple(b) for b in salvaged if first <= b[0] < first + DAY}
        bars.update(history)  # history wins where it reaches
        return [bars[t] for t in sorted(bars)]

    def _skipped(self, symbol: str, floor: int, last: int | None, end: int) -> dict[str, int]:
        times = self.source.held_times(symbol)
        if times is None:
            return {}
        counts = {
            "before_backfill_window": sum(1 for t in times if t < floor),
            "not_newer_than_stored": sum(1 for t in times if last is not None and floor <= t <= last),
            "not_closed_yet": sum(1 for t in times if t >= end),
        }
        return {reason: n for reason, n in counts.items() if n}
