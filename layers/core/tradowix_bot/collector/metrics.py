"""The collector's figures for CloudWatch (tradowix_bot.server.metrics, service `collector`), flushed
about once a minute as EMF lines on stdout (the container's awslogs driver ships them):

    BarsWritten {symbol}          1m bars stored in S3 since the last flush
    SecondsSinceLastBar {symbol}  how old the newest stored bar's close is
    StalestSymbolSeconds          the largest of those (one alarm covers every symbol)
    UpstreamLinkUp                1 while the upstream is connected and authenticated, else 0
    CollectorHeartbeat            1 per flush: its absence is the "collector not running" alarm
    WsPosts, WsPostFailures       the live fan-out's @connections posts (counted by its poster)
"""

from __future__ import annotations

import asyncio
import os
import threading

from ..server.metrics import MetricsRecorder, recorder

MINUTE = 60
# Once a minute on AWS (the alarms' period); the local stack asks for fresher figures.
FLUSH_SECONDS = float(os.environ.get("TRADOWIX_METRICS_SECONDS") or 60)


class CollectorMetrics:
    def __init__(self, collector, metrics: MetricsRecorder | None = None, *, interval: float = FLUSH_SECONDS):
        self.collector = collector
        self.metrics = metrics or recorder("collector")
        self.interval = interval
        self.newest_bar: dict[str, int] = {}  # symbol -> open time of the newest bar stored
        self._lock = threading.Lock()
        collector.writer.written_callbacks.append(self._written)

    def _written(self, symbol: str, bars) -> None:  # in the writer's threads
        if not bars:
            return
        self.metrics.count("BarsWritten", len(bars), symbol=symbol)
        newest = max(int(b[0]) for b in bars)
        with self._lock:
            self.newest_bar[symbol] = max(newest, self.newest_bar.get(symbol, newest))

    def report(self) -> list[dict]:
        """Gauges as they stand now, then one flush (returns the EMF documents)."""
        now = self.collector.clock.now()
        status = self.collector.status_record()
        self.metrics.gauge("UpstreamLinkUp", 1 if status["connected"] and status["authenticated"] else 0)
        self.metrics.count("CollectorHeartbeat")
        with self._lock:
            newest = dict(self.newest_bar)
        ages = []
        for symbol in status["symbols"]:
            if symbol in newest:  # unknown until its first write since start: left out, not 0
                age = max(0.0, now - (newest[symbol] + MINUTE))
                ages.append(age)
                self.metrics.gauge("SecondsSinceLastBar", round(age, 1), "Seconds", symbol=symbol)
        if ages:
            self.metrics.gauge("StalestSymbolSeconds", round(max(ages), 1), "Seconds")
        return self.metrics.flush()

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), timeout=self.interval)
            except TimeoutError:
                pass
            self.report()
