"""Given the local stack's CloudWatch (the emulator, fed with the EMF documents our code emits
and what Lambda/API Gateway would publish), when figures arrive, then the template's alarms say
what they would say on AWS and the health view (GET /api/admin/health, `tradowix status`) shows
the figures: bars per symbol, seconds since the last bar, link state, posts, 4xx/5xx, refused
keys. Time is given to the evaluator, never slept."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace

import pytest
from local_emulator import embedded_emulator

PREFIX = "tradowix-local-"
NOW = 1_796_000_000.0  # a minute boundary: 2026-11-30T...Z
NOW = NOW - NOW % 300


@pytest.fixture(scope="module")
def local():
    from tradowix_local.cloudwatch import LocalCloudWatch

    with embedded_emulator() as emulator:
        emulator.cloudwatch_cls = LocalCloudWatch
        yield emulator


@pytest.fixture
def cloudwatch(local):
    """A fresh CloudWatch (moto's metrics cleared) with the template's alarms."""
    from moto.cloudwatch.models import cloudwatch_backends

    for region in cloudwatch_backends.values():
        for backend in region.values():
            backend.metric_data.clear()
            backend.alarms.clear()
    cw = local.cloudwatch_cls(local.emulator, local.template, clock=lambda: NOW)
    cw.create_alarms()
    return cw


def at(seconds_ago: float) -> dict:
    return {"Timestamp": dt.datetime.fromtimestamp(NOW - seconds_ago, dt.UTC)}


def put(cw, namespace: str, name: str, value: float, seconds_ago: float, **dims: str) -> None:
    cw.client.put_metric_data(
        Namespace=namespace,
        MetricData=[
            {
                "MetricName": name,
                "Value": value,
                "Dimensions": [{"Name": k, "Value": v} for k, v in dims.items()],
                **at(seconds_ago),
            }
        ],
    )


def emit_collector(cw, *, seconds_ago: float, stalest: float, link_up: int = 1, bars: int = 1) -> None:
    """What the collector's metrics reporter prints, stored as CloudWatch Logs would."""
    from tradowix_bot.server.metrics import MetricsRecorder

    recorder = MetricsRecorder("collector", printer=lambda line: None)
    recorder.count("CollectorHeartbeat")
    recorder.gauge("UpstreamLinkUp", link_up)
    recorder.gauge("StalestSymbolSeconds", stalest, "Seconds")
    recorder.count("BarsWritten", bars, symbol="BTCUSD-OTC")
    recorder.gauge("SecondsSinceLastBar", stalest, "Seconds", symbol="BTCUSD-OTC")
    for document in recorder.flush(timestamp=NOW - seconds_ago):
        cw.emf(document)


def test_alarms_start_without_a_verdict(cloudwatch):
    alarms = cloudwatch.client.describe_alarms(AlarmNamePrefix=PREFIX)["MetricAlarms"]
    assert {a["AlarmName"] for a in alarms} == {
        PREFIX + n
        for n in (
            "data-stopped",
            "collector-not-running",
            "lambda-errors",
            "api-5xx-rate",
            "dynamodb-throttling",
        )
    }
    assert {a["StateValue"] for a in alarms} == {"INSUFFICIENT_DATA"}


def test_a_silent_collector_and_stale_data_raise_their_alarms(cloudwatch):
    # given no figure from the collector at all
    states = cloudwatch.evaluate(NOW)
    assert states[PREFIX + "collector-not-running"] == "ALARM"  # silence is the symptom
    assert states[PREFIX + "data-stopped"] == "OK"  # (no figures: that is the alarm above)
    # when the collector reports every minute but its stalest symbol's last bar is 10 minutes old
    for minute in (1, 2, 3):
        emit_collector(cloudwatch, seconds_ago=minute * 60 - 30, stalest=600)
    states = cloudwatch.evaluate(NOW)
    # then the collector runs, and the data-stopped alarm fires
    assert states[PREFIX + "collector-not-running"] == "OK"
    assert states[PREFIX + "data-stopped"] == "ALARM"


def test_fresh_data_keeps_every_alarm_ok(cloudwatch):
    for minute in (1, 2, 3):
        emit_collector(cloudwatch, seconds_ago=minute * 60 - 30, stalest=20)
    states = cloudwatch.evaluate(NOW)
    assert set(states.values()) == {"OK"}
    alarm = cloudwatch.client.describe_alarms(AlarmNames=[PREFIX + "data-stopped"])["MetricAlarms"][0]
    assert alarm["StateValue"] == "OK" and "[20, 20, 20]" in alarm["StateReason"]


def test_5xx_rate_and_lambda_errors_follow_the_invocations(cloudwatch):
    # given two 5-minute periods in which 10 of 30 partner requests failed with 5xx, one by a crash
    api = SimpleNamespace(version="2.0")
    for period in (1, 2):
        for i in range(30):
            status = 500 if i < 10 else 200
            cloudwatch._clock = lambda p=period: NOW - p * 300 + 60
            cloudwatch.invoked("ApiFunction", vars(api), {"statusCode": status}, None, 0.01)
    cloudwatch._clock = lambda: NOW - 60
    cloudwatch.invoked("ApiFunction", vars(api), None, RuntimeError("crash"), 0.01)
    states = cloudwatch.evaluate(NOW)
    assert states[PREFIX + "api-5xx-rate"] == "ALARM"
    assert states[PREFIX + "lambda-errors"] == "ALARM"
    assert states[PREFIX + "dynamodb-throttling"] == "OK"


def test_the_health_view_shows_the_figures_and_the_alarms(cloudwatch, local):
    from tradowix_bot.server import health
    from tradowix_bot.server.metrics import MetricsRecorder
    from tradowix_bot.server.state import StateStore

    # given one collector's status record, its figures, and the functions' figures
    state = StateStore(local.names["StateTable"])
    state.write_upstream_status(
        {
            "owner": "collector-1",
            "source": "tradowix",
            "connected": True,
            "authenticated": True,
            "last_error": None,
            "symbols": {"BTCUSD-OTC": {"last_tick_age": 0.4}},
        },
        now=NOW - 3,
    )
    for minute in (1, 2, 3):
        emit_collector(cloudwatch, seconds_ago=minute * 60 - 30, stalest=42, bars=2)
    api = MetricsRecorder("api", printer=lambda line: None)
    api.count("Requests", 7)
    api.count("Requests4xx", 2)
    api.count("Requests5xx", 1)
    api.count("KeyAuthFailures", 2)
    ws = MetricsRecorder("ws", printer=lambda line: None)
    ws.count("WsPosts", 5)
    ws.count("WsPostFailures", 1)
    ws.count("KeyAuthFailures", 1)
    for document in api.flush(timestamp=NOW - 100) + ws.flush(timestamp=NOW - 100):
        cloudwatch.emf(document)
    cloudwatch.evaluate(NOW)  # stores what was buffered, then evaluates
    # when the owner asks for the health view
    report = health.report(cloudwatch.client, state, alarm_prefix=PREFIX, now=NOW)
    # then it shows the figures the alarms watch
    assert report["collector"] == {
        "running": True,
        "status_age_seconds": 3.0,
        "source": "tradowix",
        "connected": True,
        "authenticated": True,
        "last_error": None,
        "upstream_link_up": True,
        "heartbeats": 3,
    }
    assert report["symbols"] == [
        {
            "symbol": "BTCUSD-OTC",
            "bars_written": 6,
            "seconds_since_last_bar": 42.0,
            "last_tick_age_seconds": 0.4,
        }
    ]
    assert report["live"] == {"posts": 5, "post_failures": 1}
    assert report["api"] == {"requests": 7, "requests_4xx": 2, "requests_5xx": 1, "key_auth_failures": 3}
    assert report["ok"] is True and {a["state"] for a in report["alarms"]} == {"OK"}
    assert "overall: OK" in "\n".join(health.summary_lines(report))


def test_a_burst_of_invocations_is_stored_per_minute_with_the_same_figures(cloudwatch):
    """Issue 16 (memory): moto kept one datum per invocation, so the local stack grew with its
    WebSocket traffic; CloudWatch keeps a statistic set per metric and minute."""
    from moto.cloudwatch.models import cloudwatch_backends

    def stored() -> int:
        return sum(len(b.metric_data) for region in cloudwatch_backends.values() for b in region.values())

    # given 600 WebSocket invocations in one minute (200 partners: connect, subscribe, leave)
    for i in range(600):
        cloudwatch._clock = lambda i=i: NOW - 120 + i * 0.1
        cloudwatch.invoked("WsFunction", {}, {"statusCode": 200}, None, 0.001 * (i % 10 + 1))
    # when they are stored
    cloudwatch.flush()
    # then moto holds one set per metric and minute (2), not 1,200 datums
    assert stored() == 2
    # and every statistic over the minutes reads what the 600 invocations were
    name = cloudwatch.template.physical_name("WsFunction")

    def stat(metric: str, statistic: str) -> list[float]:
        answer = cloudwatch.client.get_metric_data(
            MetricDataQueries=[
                {
                    "Id": "q",
                    "MetricStat": {
                        "Metric": {
                            "Namespace": "AWS/Lambda",
                            "MetricName": metric,
                            "Dimensions": [{"Name": "FunctionName", "Value": name}],
                        },
                        "Period": 120,
                        "Stat": statistic,
                    },
                }
            ],
            StartTime=dt.datetime.fromtimestamp(NOW - 120, dt.UTC),
            EndTime=dt.datetime.fromtimestamp(NOW, dt.UTC),
        )["MetricDataResults"][0]
        return [round(v, 6) for v in answer["Values"]]

    assert stat("Invocations", "Sum") == [600.0]
    assert stat("Duration", "SampleCount") == [600.0]
    assert stat("Duration", "Maximum") == [10.0]
    assert stat("Duration", "Minimum") == [1.0]
    assert stat("Duration", "Average") == [pytest.approx(5.5)]
