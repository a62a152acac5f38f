"""The owner's health view: the figures the alarms watch and the alarms' states, from CloudWatch
(on AWS; locally the stack's own CloudWatch, fed the same way) plus the collector's status
record (real time). Served as JSON by GET /api/admin/health and printed by `tradowix status`.
The shape is documented in docs/observability.md.
"""

from __future__ import annotations

import datetime as dt
import time

from .metrics import NAMESPACE
from .state import StateStore
from .storage_errors import translate

WINDOW_SECONDS = 15 * 60
COLLECTOR_STALE_SECONDS = 60  # the collector writes its status every 5 s


def _metric(query_id: str, name: str, stat: str, period: int, **dimensions: str) -> dict:
    return {
        "Id": query_id,
        "MetricStat": {
            "Metric": {
                "Namespace": NAMESPACE,
                "MetricName": name,
                "Dimensions": [{"Name": k, "Value": v} for k, v in sorted(dimensions.items())],
            },
            "Period": period,
            "Stat": stat,
        },
        "ReturnData": True,
    }


def _query_id(prefix: str, index: int) -> str:
    return f"{prefix}{index}"


def report(
    cloudwatch,
    state: StateStore,
    *,
    alarm_prefix: str,
    now: float | None = None,
    window_seconds: int = WINDOW_SECONDS,
) -> dict:
    now = time.time() if now is None else now
    status = state.upstream_status() or {}
    symbols = sorted(status.get("symbols") or {})
    window = max(60, int(window_seconds) // 60 * 60)
    sums = {
        "heartbeats": ("CollectorHeartbeat", {"service": "collector"}),
        "posts_collector": ("WsPosts", {"service": "collector"}),
        "posts_ws": ("WsPosts", {"service": "ws"}),
        "failures_collector": ("WsPostFailures", {"service": "collector"}),
        "failures_ws": ("WsPostFailures", {"service": "ws"}),
        "requests": ("Requests", {"service": "api"}),
        "requests_4xx": ("Requests4xx", {"service": "api"}),
        "requests_5xx": ("Requests5xx", {"service": "api"}),
        "auth_api": ("KeyAuthFailures", {"service": "api"}),
        "auth_ws": ("KeyAuthFailures", {"service": "ws"}),
    }
    queries = [_metric(key, name, "Sum", window, **dims) for key, (name, dims) in sums.items()]
    queries.append(_metric("link", "UpstreamLinkUp", "Minimum", 60, service="collector"))
    for i, symbol in enumerate(symbols):
        queries.append(
            _metric(_query_id("bars", i), "BarsWritten", "Sum", window, service="collector", symbol=symbol)
        )
        queries.append(
            _metric(
                _query_id("age", i), "SecondsSinceLastBar", "Maximum", 60, service="collector", symbol=symbol
            )
        )
    with translate("CloudWatch"):
        results = {}
        for start in range(0, len(queries), 500):
            answer = cloudwatch.get_metric_data(
                MetricDataQueries=queries[start : start + 500],
                StartTime=dt.datetime.fromtimestamp(now - window, dt.UTC),
                EndTime=dt.datetime.fromtimestamp(now, dt.UTC),
                ScanBy="TimestampDescending",
            )
            for result in answer["MetricDataResults"]:
                results[result["Id"]] = list(zip(result["Timestamps"], result["Values"], strict=True))
        alarms = cloudwatch.describe_alarms(AlarmNamePrefix=alarm_prefix)["MetricAlarms"]

    def total(key: str) -> float:
        return sum(v for _, v in results.get(key, []))

    def latest(key: str) -> float | None:
        points = sorted(results.get(key, []), key=lambda p: p[0])
        return points[-1][1] if points else None

    updated = status.get("updated_at")
    status_age = round(now - float(updated), 1) if updated else None
    link = latest("link")
    alarm_list = [
        {
            "name": a["AlarmName"],
            "state": a["StateValue"],
            "reason": a.get("StateReason", ""),
            "updated_at": _iso(a.get("StateUpdatedTimestamp")),
        }
        for a in sorted(alarms, key=lambda a: a["AlarmName"])
    ]
    return {
        "generated_at": _iso(dt.datetime.fromtimestamp(now, dt.UTC)),
        "window_seconds": window,
        "ok": not any(a["state"] == "ALARM" for a in alarm_list),
        "collector": {
            "running": status_age is not None and status_age <= COLLECTOR_STALE_SECONDS,
            "status_age_seconds": status_age,
            "source": status.get("source"),
            "connected": bool(status.get("connected")),
            "authenticated": bool(status.get("authenticated")),
            "last_error": status.get("last_error"),
            "upstream_link_up": None if link is None else link >= 1,
            "heartbeats": int(total("heartbeats")),
        },
        "symbols": [
            {
                "symbol": symbol,
                "bars_written": int(total(_query_id("bars", i))),
                "seconds_since_last_bar": latest(_query_id("age", i)),
                "last_tick_age_seconds": (status["symbols"].get(symbol) or {}).get("last_tick_age"),
            }
            for i, symbol in enumerate(symbols)
        ],
        "live": {
            "posts": int(total("posts_collector") + total("posts_ws")),
            "post_failures": int(total("failures_collector") + total("failures_ws")),
        },
        "api": {
            "requests": int(total("requests")),
            "requests_4xx": int(total("requests_4xx")),
            "requests_5xx": int(total("requests_5xx")),
            "key_auth_failures": int(total("auth_api") + total("auth_ws")),
        },
        "alarms": alarm_list,
    }


def _iso(value) -> str | None:
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return str(value)


def summary_lines(health: dict) -> list[str]:
    """`tradowix status`: the report as a few lines an owner reads at a glance."""
    c = health["collector"]
    lines = [
        f"overall: {'OK' if health['ok'] else 'ALARM'}   (figures of the last {health['window_seconds'] // 60} min)",
        "collector: "
        + ("running" if c["running"] else "NOT RUNNING")
        + (
            f", status {c['status_age_seconds']:g} s old"
            if c["status_age_seconds"] is not None
            else ", no status yet"
        )
        + f", upstream {'up' if c['connected'] and c['authenticated'] else 'DOWN'}"
        + (f" ({c['last_error']})" if c["last_error"] else ""),
    ]
    for s in health["symbols"]:
        age = s["seconds_since_last_bar"]
        lines.append(
            f"  {s['symbol']:<14} {s['bars_written']:>6} bars written   last bar "
            + (f"{age:>5.0f} s ago" if age is not None else "    ? (no figure yet)")
        )
    live, api = health["live"], health["api"]
    lines.append(f"live: {live['posts']} messages posted, {live['post_failures']} failed")
    lines.append(
        f"api: {api['requests']} requests, {api['requests_4xx']} 4xx, {api['requests_5xx']} 5xx, "
        f"{api['key_auth_failures']} refused keys"
    )
    lines.append("alarms:")
    for a in health["alarms"]:
        lines.append(f"  {a['state']:<17} {a['name']}: {a['reason']}")
    return lines
