"""Market time for the collector, injectable so tests and benchmarks can compress it.

`Clock(speed=60)` runs a simulated minute per wall second. Two processes given the same
`anchor` share one simulated timeline (a restarted collector continues where the killed
one was). Leases and throttles use wall time; only market time (which minute a tick
belongs to, when a minute is over) uses this clock.
"""

from __future__ import annotations

import asyncio
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

    def wall(self, seconds: float) -> float:
        """Wall seconds that `seconds` of market time take."""
        return seconds / self.speed
