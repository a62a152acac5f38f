"""The figures an owner watches, as CloudWatch metrics in the Embedded Metric Format (EMF).

Counters and gauges are gathered in memory and flushed as EMF documents (built and validated by
Powertools' EMF provider), one per dimension set, printed as one JSON line each: CloudWatch Logs
turns them into metrics, from Lambda and from the collector's container (awslogs) alike. The
Lambda wrappers flush at the end of every invocation, the collector about once a minute.

Namespace `Tradowix`; dimension `service` (api, admin, ws, collector), plus `symbol` where a
figure is per symbol. The names (template.yaml's alarms and the health view read them):

    Requests, Requests4xx, Requests5xx     HTTP answers of the API functions       (api, admin)
    KeyAuthFailures                        refused API keys / sessions              (api, ws)
    WsPosts, WsPostFailures                messages sent through @connections       (ws, collector)
    BarsWritten {symbol}                   closed 1m bars stored                    (collector)
    SecondsSinceLastBar {symbol}           age of the newest closed bar             (collector)
    StalestSymbolSeconds                   the largest of those                     (collector)
    UpstreamLinkUp                         1 while connected and authenticated      (collector)
    CollectorHeartbeat                     1 per flush while the collector runs     (collector)

The local stack registers a sink (`add_sink`) that stores the same documents in its emulated
CloudWatch, so the health view and `tradowix status` read the same figures there as on AWS.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable

NAMESPACE = "Tradowix"

_sinks: list[Callable[[dict], None]] = []


def add_sink(sink: Callable[[dict], None]) -> None:
    """Also hand every EMF document to `sink` (the local stack's CloudWatch stand-in)."""
    if sink not in _sinks:
        _sinks.append(sink)


def remove_sink(sink: Callable[[dict], None]) -> None:
    if sink in _sinks:
        _sinks.remove(sink)


class MetricsRecorder:
    """Thread-safe. Counters add up between flushes; a gauge keeps its last value."""

    def __init__(self, service: str, *, printer: Callable[[str], None] | None = None):
        self.service = service
        self._counts: dict[tuple, float] = {}
        self._gauges: dict[tuple, tuple[float, str]] = {}
        self._lock = threading.Lock()
        self._print = printer or (lambda line: print(line, flush=True))

    def count(self, name: str, value: float = 1, **dimensions: str) -> None:
        key = (name, tuple(sorted(dimensions.items())))
        with self._lock:
            self._counts[key] = self._counts.get(key, 0) + value

    def gauge(self, name: str, value: float, unit: str = "None", **dimensions: str) -> None:
        key = (name, tuple(sorted(dimensions.items())))
        with self._lock:
            self._gauges[key] = (float(value), unit)

    def pending(self) -> bool:
        with self._lock:
            return bool(self._counts or self._gauges)

    def flush(self, timestamp: float | None = None) -> list[dict]:
        """Emit what was gathered since the last flush; returns the EMF documents."""
        from aws_lambda_powertools.metrics.functions import is_metrics_disabled
        from aws_lambda_powertools.metrics.provider.cloudwatch_emf.cloudwatch import (
            AmazonCloudWatchEMFProvider,
        )

        with self._lock:
            counts, gauges = self._counts, self._gauges
            self._counts, self._gauges = {}, {}
        by_dimensions: dict[tuple, list[tuple[str, str, float]]] = {}
        for (name, dims), value in counts.items():
            by_dimensions.setdefault(dims, []).append((name, "Count", value))
        for (name, dims), (value, unit) in gauges.items():
            by_dimensions.setdefault(dims, []).append((name, unit, value))
        documents = []
        for dims, values in by_dimensions.items():
            provider = AmazonCloudWatchEMFProvider(namespace=NAMESPACE, service=self.service)
            provider.add_dimension("service", self.service)
            for key, value in dims:
                provider.add_dimension(key, value)
            for name, unit, value in values:
                provider.add_metric(name=name, unit=unit, value=value)
            if timestamp is not None:
                provider.set_timestamp(int(timestamp * 1000))
            documents.append(provider.serialize_metric_set())
        if not is_metrics_disabled():
            for document in documents:
                self._print(json.dumps(document, separators=(",", ":")))
        for sink in list(_sinks):
            for document in documents:
                try:
                    sink(document)
                except Exception:  # noqa: BLE001 - a local sink must never fail the caller
                    pass
        return documents


_recorders: dict[str, MetricsRecorder] = {}


def recorder(service: str) -> MetricsRecorder:
    """The process's recorder for `service` (one per function, one for the collector)."""
    found = _recorders.get(service)
    if found is None:
        found = _recorders.setdefault(service, MetricsRecorder(service))
    return found


class CountedPoster:
    """An @connections poster that counts what it sends: WsPosts (delivered), WsPostFailures
    (refused or unreachable; a client that is gone, 410, is neither)."""

    def __init__(self, poster, metrics: MetricsRecorder):
        self.poster = poster
        self.metrics = metrics

    def _count(self, results) -> None:
        ok = sum(1 for r in results if r == "ok")
        failed = sum(1 for r in results if r == "failed")
        if ok:
            self.metrics.count("WsPosts", ok)
        if failed:
            self.metrics.count("WsPostFailures", failed)

    def post(self, connection_id, message):
        result = self.poster.post(connection_id, message)
        self._count([result])
        return result

    def post_many(self, posts):
        results = self.poster.post_many(posts)
        self._count(results)
        return results

    def __getattr__(self, name):  # delete, close, endpoint_url, ...
        return getattr(self.poster, name)


def emf_values(document: dict) -> list[tuple[str, str, float, dict[str, str], float]]:
    """(name, unit, value, dimensions, timestamp) of each metric in an EMF document."""
    meta = document.get("_aws", {})
    timestamp = meta.get("Timestamp", time.time() * 1000) / 1000
    out = []
    for directive in meta.get("CloudWatchMetrics", []):
        for dimension_set in directive.get("Dimensions", [[]]) or [[]]:
            dimensions = {d: str(document[d]) for d in dimension_set if d in document}
            for metric in directive.get("Metrics", []):
                values = document.get(metric["Name"])
                for value in values if isinstance(values, list) else [values]:
                    if isinstance(value, int | float):
                        out.append(
                            (metric["Name"], metric.get("Unit", "None"), float(value), dimensions, timestamp)
                        )
    return out
