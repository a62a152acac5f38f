"""Given the local stack running, when partners use the API and the collector streams, then the
owner reads on this machine what CloudWatch and the alarms would say on AWS: `tradowix status`
and the admin panel's GET /api/admin/health give the same figures (collector and link state,
bars per symbol, 4xx/5xx, refused keys) and the template's alarms; every log line of a request
carries its ids."""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request

import pytest
from polling import eventually

pytestmark = pytest.mark.integration


def http(method: str, url: str, body: dict | None = None, headers: dict | None = None):
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        url, data=data, method=method, headers={"Content-Type": "application/json", **(headers or {})}
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as resp:
            return resp.status, dict(resp.headers), json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), json.loads(exc.read() or b"null")


def status_json(stack) -> dict:
    return json.loads(stack.cli("status", "--json").stdout)


def test_status_shows_the_figures_and_alarms_of_this_machine(local_stack):
    # given a key, then partner requests: served, refused (wrong key), not found
    key_id, raw = local_stack.create_key("observed")
    before = status_json(local_stack)["api"]
    api = local_stack.api_url
    assert http("GET", f"{api}/api/symbols", headers={"X-Api-Key": raw})[0] == 200
    assert http("GET", f"{api}/api/symbols", headers={"X-Api-Key": "twk_" + "x" * 43})[0] == 401
    assert http("GET", f"{api}/api/candles?symbol=NOPE-OTC", headers={"X-Api-Key": raw})[0] == 404
    local_stack.cli("keys", "delete", key_id)  # the stack is shared

    # when the owner asks (figures reach the local CloudWatch within seconds, as on AWS within a
    # minute; the collector reports every 10 s locally)
    # (waiting for each figure this test adds: `before` may have been read while an earlier
    # test's figures were still on their way, so the request count alone can reach +3 first)
    def counted() -> dict | None:
        report = status_json(local_stack)
        api_now = report["api"]
        requests_in = (
            api_now["requests"] - before["requests"] >= 3
            and api_now["requests_4xx"] - before["requests_4xx"] >= 2
            and api_now["key_auth_failures"] - before["key_auth_failures"] >= 1
        )
        return report if requests_in and any(s["bars_written"] for s in report["symbols"]) else None

    report = eventually(counted, within=60, what="the requests and bars in `tradowix status`", interval=2)
    # then the figures are there
    assert report["collector"]["running"] is True and report["collector"]["source"] == "synthetic"
    assert report["collector"]["heartbeats"] >= 1
    assert report["symbols"] and any(s["bars_written"] > 0 for s in report["symbols"])
    assert all(
        s["seconds_since_last_bar"] is None or s["seconds_since_last_bar"] < 300 for s in report["symbols"]
    )
    after = report["api"]
    assert after["requests"] - before["requests"] >= 3
    assert after["requests_4xx"] - before["requests_4xx"] >= 2
    assert after["key_auth_failures"] - before["key_auth_failures"] >= 1
    names = {a["name"] for a in report["alarms"]}
    assert names == {
        "tradowix-local-" + n
        for n in (
            "data-stopped",
            "collector-not-running",
            "lambda-errors",
            "api-5xx-rate",
            "dynamodb-throttling",
        )
    }
    # and the human form says the same in a few lines
    text = local_stack.cli("status").stdout
    assert "collector: running" in text and "alarms:" in text


def test_the_admin_health_endpoint_serves_the_same_view(local_stack):
    secret = re.search(r"admin secret \(shown once[^)]*\): (\S+)", local_stack.log()).group(1)
    api = local_stack.api_url
    status, headers, answer = http("POST", f"{api}/api/admin/login", {"secret": secret})
    assert status == 200
    cookie = headers["set-cookie"].split(";")[0]
    status, _, health = http("GET", f"{api}/api/admin/health", headers={"Cookie": cookie})
    assert status == 200
    assert set(health) == {
        "generated_at",
        "window_seconds",
        "ok",
        "collector",
        "symbols",
        "live",
        "api",
        "alarms",
    }
    assert health["collector"]["running"] is True
    # without the admin session: refused like every admin read
    assert http("GET", f"{api}/api/admin/health")[0] == 401


def test_every_log_line_of_a_request_carries_its_ids(local_stack):
    api = local_stack.api_url
    http("GET", f"{api}/api/docs")
    lines = [json.loads(line) for line in local_stack.log().splitlines() if line.startswith("{")]
    requests = [line for line in lines if line.get("message") == "request"]
    assert requests, "no access-log line"
    for line in requests[-5:]:
        assert line["request_id"] and line["correlation_id"] and line["function"]
    collector = [line for line in lines if line.get("service") == "collector"]
    assert collector and all(line.get("run_id") for line in collector)
