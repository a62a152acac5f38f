"""CloudWatch for the local stack: what AWS does with our logs and metrics, done here.

On AWS, CloudWatch Logs turns the EMF lines of the functions and the collector into metrics,
Lambda and API Gateway publish their own (Errors, 5xx, ...), and CloudWatch evaluates the
template's alarms every minute. Locally:

- `emf(document)` stores an EMF document's metrics in the emulator's CloudWatch (the functions
  hand them over in-process through tradowix_bot.server.metrics' sink; the collector prints them and
  its supervisor passes its EMF lines here); like CloudWatch's own ingestion this is
  asynchronous: figures are buffered and stored every FLUSH_SECONDS by the stack's thread, so a
  request never waits on it;
- `invoked(...)` publishes what Lambda and API Gateway would for each local invocation
  (AWS/Lambda Invocations, Errors, Duration; AWS/ApiGateway Count, 4xx, 5xx);
- the template's alarms are created in the emulator, and a thread evaluates them every minute
  (metric math included) and sets their state.

So the health view and `tradowix status` read the same metrics and alarm states locally as on
AWS, through the same CloudWatch API.
"""

from __future__ import annotations

import ast
import datetime as dt
import operator
import threading
import time

from tradowix_bot.server.metrics import emf_values

from .template import Template

EVALUATE_EVERY_SECONDS = 60.0
FLUSH_SECONDS = 2.0


class LocalCloudWatch:
    def __init__(self, emulator, template: Template, *, log=None, clock=time.time):
        self.emulator = emulator
        self.template = template
        self._log = log or (lambda message: None)
        self._clock = clock
        self._client = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pending: list[tuple[str, dict]] = []
        self._pending_lock = threading.Lock()
        self.http_api_id = next(
            (template.physical_name(k) for k in template.of_type("AWS::Serverless::HttpApi")), "local"
        )

    @property
    def client(self):
        if self._client is None:
            self._client = self.emulator.client("cloudwatch")
        return self._client

    # -- metrics in ---------------------------------------------------------------------------
    def emf(self, document: dict) -> None:
        """Store the metrics of one EMF document (CloudWatch Logs' extraction)."""
        namespace = document.get("_aws", {}).get("CloudWatchMetrics", [{}])[0].get("Namespace", "")
        data = [
            {
                "MetricName": name,
                "Dimensions": [{"Name": k, "Value": v} for k, v in sorted(dims.items())],
                "Value": value,
                "Unit": unit if unit != "None" else "None",
                "Timestamp": dt.datetime.fromtimestamp(ts, dt.UTC),
            }
            for name, unit, value, dims, ts in emf_values(document)
        ]
        self._put(namespace, data)

    def put(self, namespace: str, name: str, value: float, unit: str = "Count", **dimensions: str) -> None:
        self._put(
            namespace,
            [
                {
                    "MetricName": name,
                    "Dimensions": [{"Name": k, "Value": v} for k, v in sorted(dimensions.items())],
                    "Value": value,
                    "Unit": unit,
                    "Timestamp": dt.datetime.fromtimestamp(self._clock(), dt.UTC),
                }
            ],
        )

    def _put(self, namespace: str, data: list[dict]) -> None:
        if namespace and data:
            with self._pending_lock:
                self._pending.extend((namespace, datum) for datum in data)

    def flush(self) -> None:
        """Store the buffered figures (the thread does it every FLUSH_SECONDS)."""
        with self._pending_lock:
            pending, self._pending = self._pending, []
        by_namespace: dict[str, list[dict]] = {}
        for namespace, datum in pending:
            by_namespace.setdefault(namespace, []).append(datum)
        by_namespace = {namespace: per_minute(data) for namespace, data in by_namespace.items()}
        try:
            for namespace, data in by_namespace.items():
                for start in range(0, len(data), 500):
                    self.client.put_metric_data(Namespace=namespace, MetricData=data[start : start + 500])
        except Exception as exc:  # noqa: BLE001 - metrics must never break the stack
            self._log(f"metrics not stored: {type(exc).__name__}: {exc}")

    def invoked(self, function_name: str, event: dict, result, error, seconds: float) -> None:
        """One local invocation, as Lambda and API Gateway would count it."""
        name = self.template.physical_name(function_name)
        self.put("AWS/Lambda", "Invocations", 1, FunctionName=name)
        self.put("AWS/Lambda", "Duration", round(seconds * 1000, 1), "Milliseconds", FunctionName=name)
        if error is not None:
            self.put("AWS/Lambda", "Errors", 1, FunctionName=name)
        if (event or {}).get("version") == "2.0":  # an HTTP API request
            status = 500 if error is not None else int((result or {}).get("statusCode", 200))
            self.put("AWS/ApiGateway", "Count", 1, ApiId=self.http_api_id)
            self.put("AWS/ApiGateway", "4xx", 1 if 400 <= status < 500 else 0, ApiId=self.http_api_id)
            self.put("AWS/ApiGateway", "5xx", 1 if status >= 500 else 0, ApiId=self.http_api_id)

    # -- alarms -------------------------------------------------------------------------------
    def alarms(self) -> list[dict]:
        """The template's alarms, resolved (actions left out: nobody to notify locally)."""
        out = []
        for res in self.template.of_type("AWS::CloudWatch::Alarm").values():
            props = _without_none(self.template.resolve(res["Properties"]))
            props.pop("AlarmActions", None)
            props.pop("OKActions", None)
            props["Threshold"] = float(props["Threshold"])
            for key in ("Period", "EvaluationPeriods", "DatapointsToAlarm"):
                if key in props:
                    props[key] = int(props[key])
            for query in props.get("Metrics", []):
                if "MetricStat" in query:
                    query["MetricStat"]["Period"] = int(query["MetricStat"]["Period"])
            out.append(props)
        return out

    def create_alarms(self) -> None:
        for alarm in self.alarms():
            self.client.put_metric_alarm(**alarm)
            # as on AWS, an alarm not evaluated yet has no verdict
            self.client.set_alarm_state(
                AlarmName=alarm["AlarmName"], StateValue="INSUFFICIENT_DATA", StateReason="not evaluated yet"
            )

    def evaluate(self, now: float | None = None) -> dict[str, str]:
        """Evaluate every alarm as CloudWatch does each minute; returns name -> state."""
        now = self._clock() if now is None else now
        self.flush()
        states = {}
        for alarm in self.alarms():
            state, reason = self._evaluate(alarm, now)
            states[alarm["AlarmName"]] = state
            try:
                self.client.set_alarm_state(
                    AlarmName=alarm["AlarmName"], StateValue=state, StateReason=reason
                )
            except Exception as exc:  # noqa: BLE001
                self._log(f"alarm {alarm['AlarmName']} not updated: {type(exc).__name__}: {exc}")
        return states

    def _evaluate(self, alarm: dict, now: float) -> tuple[str, str]:
        periods = alarm["EvaluationPeriods"]
        needed = alarm.get("DatapointsToAlarm", periods)
        if "Metrics" in alarm:
            queries = [q for q in alarm["Metrics"] if "MetricStat" in q]
            period = queries[0]["MetricStat"]["Period"]
            expression = next(q["Expression"] for q in alarm["Metrics"] if "Expression" in q)
        else:
            period = alarm["Period"]
            queries = [
                {
                    "Id": "m",
                    "MetricStat": {
                        "Metric": {
                            "Namespace": alarm["Namespace"],
                            "MetricName": alarm["MetricName"],
                            "Dimensions": alarm.get("Dimensions", []),
                        },
                        "Period": period,
                        "Stat": alarm["Statistic"],
                    },
                }
            ]
            expression = "m"
        end = now - now % period
        start = end - periods * period
        series = self._series(queries, start, end, period)
        values = []
        for bucket in range(int(start), int(end), period):
            known = {qid: points.get(bucket) for qid, points in series.items()}
            values.append(_expression(expression, known))
        breaching = [
            v is not None and _compare(alarm["ComparisonOperator"], v, alarm["Threshold"]) for v in values
        ]
        missing = sum(v is None for v in values)
        shown = ", ".join("-" if v is None else f"{v:g}" for v in values)
        if missing == len(values):
            treat = alarm.get("TreatMissingData", "missing")
            if treat == "breaching":
                return "ALARM", f"no datapoints in the last {periods} periods (treated as breaching)"
            if treat == "notBreaching":
                return "OK", f"no datapoints in the last {periods} periods (treated as not breaching)"
            return "INSUFFICIENT_DATA", f"no datapoints in the last {periods} periods"
        if alarm.get("TreatMissingData") == "breaching":
            breaching = [b or v is None for b, v in zip(breaching, values, strict=True)]
        state = "ALARM" if sum(breaching) >= needed else "OK"
        return state, f"last {periods} datapoints [{shown}] against threshold {alarm['Threshold']:g}"

    def _series(
        self, queries: list[dict], start: float, end: float, period: int
    ) -> dict[str, dict[int, float]]:
        results = self.client.get_metric_data(
            MetricDataQueries=[
                {"Id": q["Id"], "MetricStat": q["MetricStat"], "ReturnData": True} for q in queries
            ],
            StartTime=dt.datetime.fromtimestamp(start, dt.UTC),
            EndTime=dt.datetime.fromtimestamp(end, dt.UTC),
        )["MetricDataResults"]
        series: dict[str, dict[int, float]] = {q["Id"]: {} for q in queries}
        for result in results:
            for stamp, value in zip(result["Timestamps"], result["Values"], strict=True):
                t = stamp.timestamp()
                bucket = int(t - (t - start) % period)
                series[result["Id"]][bucket] = value
        return series

    # -- the evaluation thread ----------------------------------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="local-alarms", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        next_evaluation = time.time() + EVALUATE_EVERY_SECONDS - time.time() % EVALUATE_EVERY_SECONDS
        while not self._stop.wait(FLUSH_SECONDS):
            try:
                if time.time() >= next_evaluation:
                    next_evaluation += EVALUATE_EVERY_SECONDS
                    self.evaluate()  # flushes first
                else:
                    self.flush()
            except Exception as exc:  # noqa: BLE001 - keep going next round
                self._log(f"alarm evaluation failed: {type(exc).__name__}: {exc}")

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)


def per_minute(data: list[dict]) -> list[dict]:
    """The figures as one statistic set per metric and minute, as CloudWatch stores
    standard-resolution metrics. moto keeps every datum it is sent, so one per figure would
    grow the stack with its traffic (six per WebSocket partner who comes and goes, issue 16);
    per minute it grows with time only, and Sum, Average, Minimum, Maximum and SampleCount over
    periods of a minute or more read the same. A set carries its first figure's timestamp."""
    sets: dict[tuple, dict] = {}
    for datum in data:
        stamp = datum["Timestamp"]
        key = (
            datum["MetricName"],
            tuple((d["Name"], d["Value"]) for d in datum["Dimensions"]),
            datum.get("Unit", "None"),
            int(stamp.timestamp()) // 60,
        )
        value = float(datum["Value"])
        found = sets.get(key)
        if found is None:
            sets[key] = {
                **datum,
                "Timestamp": stamp,
                "StatisticValues": {"SampleCount": 1.0, "Sum": value, "Minimum": value, "Maximum": value},
            }
            del sets[key]["Value"]
            continue
        stats = found["StatisticValues"]
        stats["SampleCount"] += 1
        stats["Sum"] += value
        stats["Minimum"] = min(stats["Minimum"], value)
        stats["Maximum"] = max(stats["Maximum"], value)
        found["Timestamp"] = min(found["Timestamp"], stamp)
    return list(sets.values())


def _without_none(value):
    if isinstance(value, dict):
        return {k: _without_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_none(v) for v in value if v is not None]
    return value


def _compare(op: str, value: float, threshold: float) -> bool:
    return {
        "GreaterThanThreshold": value > threshold,
        "GreaterThanOrEqualToThreshold": value >= threshold,
        "LessThanThreshold": value < threshold,
        "LessThanOrEqualToThreshold": value <= threshold,
    }[op]


_BINARY = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv}
_COMPARE = {ast.Gt: operator.gt, ast.GtE: operator.ge, ast.Lt: operator.lt, ast.LtE: operator.le}


def _expression(text: str, values: dict[str, float | None]) -> float | None:
    """CloudWatch metric math, as far as the template uses it: + - * /, comparisons, IF(c, a, b),
    SUM([...]). A missing metric counts as 0 in sums, as in CloudWatch; all missing: None."""
    if all(v is None for v in values.values()):
        return None

    def ev(node):
        if isinstance(node, ast.Expression):
            return ev(node.body)
        if isinstance(node, ast.Constant):
            return float(node.value)
        if isinstance(node, ast.Name):
            return values.get(node.id) or 0.0
        if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
            left, right = ev(node.left), ev(node.right)
            if isinstance(node.op, ast.Div) and right == 0:
                return 0.0
            return _BINARY[type(node.op)](left, right)
        if isinstance(node, ast.Compare) and len(node.ops) == 1 and type(node.ops[0]) in _COMPARE:
            return 1.0 if _COMPARE[type(node.ops[0])](ev(node.left), ev(node.comparators[0])) else 0.0
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            if node.func.id == "IF":
                condition, then, otherwise = node.args
                return ev(then) if ev(condition) else ev(otherwise)
            if node.func.id == "SUM":
                return sum(ev(e) for e in node.args[0].elts)
        raise ValueError(f"metric math not modelled locally: {ast.dump(node)}")

    return ev(ast.parse(text, mode="eval"))
