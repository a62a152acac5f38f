"""The collector's time, injected so tests and benchmarks decide how it passes.

Every time the collector reads or waits for goes through its clock: which minute a tick
belongs to, when a minute is over, lease expiry, back-offs, status and forming-record
intervals. Only waits on the network itself (a handshake, an answer, a keepalive) are wall
time: they measure the link, not the market.

`Clock()` is real time. `Clock(speed=60)` runs a simulated minute per wall second; two
processes given the same `anchor` share one simulated timeline (a restarted collector
continues where the killed one was). `ManualClock` stands still until a test moves it,
so a test can run an hour of collecting in a second, the same way every time.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import threading
import time


class Clock:
    def __init__(self, speed: float = 1.0, anchor: float | None = None):
        if speed <= 0:
            raise ValueError("clock speed must be positive")
        self.speed = float(speed)
        self.anchor = time.time() if anchor is None else float(anchor)

    def now(self) -> float:
        if self.speed == 1.0:
            return time.time()
        return self.anchor + (time.time() - self.anchor) * self.speed

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds) / self.speed)

    async def sleep_until(self, when: float) -> None:
        """Sleep until the clock reads `when` (at once if it already does)."""
        await self.sleep(when - self.now())

    def wall(self, seconds: float) -> float:
        """Wall seconds that `seconds` of clock time take."""
        return seconds / self.speed

    def slack(self, wall_seconds: float) -> float:
        """Clock seconds that a real delay of `wall_seconds` (network, scheduling) spans: on a
        compressed clock, a few wall milliseconds of delay are seconds of market time."""
        return wall_seconds * self.speed

    async def wait(self, event: asyncio.Event, timeout: float) -> bool:
        """Wait until `event` is set or `timeout` clock seconds pass; True when it is set."""
        if event.is_set():
            return True
        waiter = asyncio.ensure_future(event.wait())
        sleeper = asyncio.ensure_future(self.sleep(timeout))
        try:
            await asyncio.wait({waiter, sleeper}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (waiter, sleeper):
                task.cancel()
        return event.is_set()


class ManualClock(Clock):
    """A clock that only moves when told to (`set`/`advance`). Sleepers wake when the time
    they wait for is reached; they may sleep on any thread's event loop."""

    def __init__(self, start: float):
        super().__init__(1.0, start)
        self._now = float(start)
        self._sleepers: list[tuple[float, int, asyncio.Future]] = []
        self._order = itertools.count()
        self._lock = threading.Lock()

    def now(self) -> float:
        return self._now

    def slack(self, wall_seconds: float) -> float:
        return wall_seconds  # no real delay passes on this clock

    async def sleep(self, seconds: float) -> None:
        await self._sleep_until(self._now + seconds)

    async def sleep_until(self, when: float) -> None:
        # The deadline is taken as given: a sleeper on another thread that read the time before
        # the clock moved still wakes (a relative sleep would start from the new time).
        await self._sleep_until(when)

    async def _sleep_until(self, when: float) -> None:
        future = asyncio.get_running_loop().create_future()
        with self._lock:
            if when <= self._now:
                future = None
            else:
                heapq.heappush(self._sleepers, (when, next(self._order), future))
        if future is None:
            await asyncio.sleep(0)
        else:
            await future

    def set(self, when: float) -> None:
        """Move to `when` (never backwards) and wake everyone whose time has come."""
        with self._lock:
            self._now = max(self._now, float(when))
            due = []
            while self._sleepers and self._sleepers[0][0] <= self._now:
                due.append(heapq.heappop(self._sleepers)[2])
        for future in due:
            future.get_loop().call_soon_threadsafe(_wake, future)

    def advance(self, seconds: float) -> None:
        self.set(self._now + seconds)


def _wake(future: asyncio.Future) -> None:
    if not future.done():  # a cancelled sleep
        future.set_result(None)
