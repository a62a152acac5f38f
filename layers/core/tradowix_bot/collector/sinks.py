"""Bar sinks the collector feeds. A sink's `on_bar` may block (the live publisher posts to
API Gateway over HTTP), so it runs on a worker thread of its own, never on the collector's
event loop: a slow fan-out must not delay ticks or S3 writes."""

from __future__ import annotations

import logging
import queue
import threading

log = logging.getLogger(__name__)


class ThreadedSink:
    """Hands bars to `sink.on_bar` in order on one worker thread.

    The queue is bounded: if the sink falls this far behind, forming updates are dropped
    (a newer one follows within seconds) but closing bars are always kept."""

    def __init__(self, sink, max_pending: int = 10_000):
        self.sink = sink
        self._queue: queue.Queue = queue.Queue(maxsize=max_pending)
        self.dropped = 0
        self._thread = threading.Thread(target=self._run, name=f"sink-{type(sink).__name__}", daemon=True)
        self._thread.start()

    def on_bar(self, symbol: str, bar: tuple, closed: bool) -> None:
        try:
            self._queue.put_nowait((symbol, bar, closed))
        except queue.Full:
            if closed:
                self._queue.put((symbol, bar, closed))
            else:
                self.dropped += 1

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            try:
                self.sink.on_bar(*item)
            except Exception:  # noqa: BLE001 - one failed update must not end live streaming
                log.exception("live sink failed", extra={"symbol": item[0]})

    def close(self, timeout: float = 5.0) -> None:
        self._queue.put(None)
        self._thread.join(timeout)
