"""Given data services the user runs (LocalStack, or any endpoint per service through boto3's
AWS_ENDPOINT_URL_<SERVICE>), when the local stack starts, then a service that does not work
stops it at once with one line naming the service (not a traceback after 10 s), and with S3 and
SSM on LocalStack while DynamoDB stays on the embedded emulator, partners are served as usual.

The LocalStack test starts LocalStack itself when it is installed: `localstack-core` in this
interpreter, or in the one TRADOWIX_LOCALSTACK_PYTHON names (free LocalStack needs Python 3.13;
docs/localstack.md). Installing it is never part of the default set-up; without it the test is
skipped with the reason printed."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_chart(tmp_path: Path, env_changes: dict, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(env_changes)
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "tradowix_bot.cli",
            "chart",
            "--no-browser",
            "--port",
            str(closed_port()),
            "--ws-port",
            str(closed_port()),
            "--data-dir",
            str(tmp_path / "data"),
            *args,
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )


@pytest.mark.parametrize(
    ("variable", "service"),
    [
        ("AWS_ENDPOINT_URL_DYNAMODB", "DynamoDB"),
        ("AWS_ENDPOINT_URL_S3", "S3"),
        ("AWS_ENDPOINT_URL_SSM", "SSM"),
    ],
)
def test_a_service_that_does_not_work_stops_the_stack_with_one_line_naming_it(tmp_path, variable, service):
    url = f"http://127.0.0.1:{closed_port()}"
    started = time.monotonic()
    out = run_chart(tmp_path, {variable: url})
    assert out.returncode == 1
    assert "Traceback" not in out.stderr
    (line,) = out.stderr.strip().splitlines()
    assert line.startswith(f"error: {service} at {url} does not work: ")
    assert variable in line
    assert time.monotonic() - started < 60


def test_the_localstack_flag_puts_s3_and_ssm_where_localstack_host_says(tmp_path):
    # given LOCALSTACK_HOST naming an address where nothing listens (as `awslocal` reads it)
    url = f"http://127.0.0.1:{closed_port()}"
    # when the owner starts the stack with --localstack
    out = run_chart(tmp_path, {"LOCALSTACK_HOST": url.removeprefix("http://")}, "--localstack")
    # then the stack looked for S3 there (found by localstack-client), and stops with one line
    assert out.returncode == 1
    assert "Traceback" not in out.stderr
    (line,) = out.stderr.strip().splitlines()
    assert line.startswith(f"error: S3 at {url} does not work: ")


# -- against a LocalStack started here --------------------------------------------------------
def localstack_python() -> str | None:
    candidate = os.environ.get("TRADOWIX_LOCALSTACK_PYTHON")
    candidates = [candidate] if candidate else [sys.executable]
    for python in candidates:
        probe = subprocess.run(
            [python, "-c", "import localstack.aws.components"], capture_output=True, text=True, timeout=60
        )
        if probe.returncode == 0:
            return python
    return None


@pytest.fixture
def localstack(tmp_path):
    python = localstack_python()
    if python is None:
        reason = (
            "LocalStack is not installed (install localstack-core[runtime] into a Python 3.13 venv and set "
            "TRADOWIX_LOCALSTACK_PYTHON to its python; see docs/localstack.md): LocalStack test skipped"
        )
        print(f"\n{reason}", file=sys.__stderr__, flush=True)  # printed even when output is captured
        pytest.skip(reason)
    port = closed_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("AWS_")},
        "GATEWAY_LISTEN": f"127.0.0.1:{port}",
        "SERVICES": "s3,ssm,sts",
        "LOCALSTACK_VOLUME_DIR": str(tmp_path / "localstack"),
        "FILESYSTEM_ROOT": str(tmp_path / "localstack-fs"),
        "DISABLE_EVENTS": "1",
        "SKIP_SSL_CERT_DOWNLOAD": "1",
        "DNS_ADDRESS": "0",  # no DNS server of its own (offline, and not needed here)
        "GATEWAY_SERVER": "hypercorn",
    }
    log = (tmp_path / "localstack.log").open("w")
    process = subprocess.Popen(
        [python, "-m", "localstack.runtime.main"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=tmp_path,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        try:
            with urllib.request.urlopen(f"{url}/_localstack/health", timeout=2) as resp:
                if json.loads(resp.read()).get("services", {}).get("s3") in ("available", "running"):
                    break
        except OSError:
            pass
        assert process.poll() is None, (tmp_path / "localstack.log").read_text()[-3000:]
        assert time.monotonic() < deadline, "LocalStack did not start in 120 s"
        time.sleep(0.5)
    yield url
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def test_s3_and_ssm_on_localstack_with_dynamodb_embedded(localstack, tmp_path, stacks):
    import boto3

    start_stack, stop_stack = stacks
    stack = start_stack(
        tmp_path / "data",
        "--localstack",  # S3 and SSM where LOCALSTACK_HOST says (localstack-client), DynamoDB embedded
        env={"LOCALSTACK_HOST": localstack.removeprefix("http://")},
        timeout=240,
    )
    try:
        # given the stack up: it says where each service lives
        assert f"S3 and SSM on {localstack} (yours)" in stack.log()
        assert "DynamoDB on the embedded emulator" in stack.log()
        # when a partner with a key asks for candles
        _, raw = stack.create_key("localstack-partner")
        request = urllib.request.Request(
            f"{stack.api_url}/api/candles?symbol=BTCUSD-OTC&limit=5", headers={"X-Api-Key": raw}
        )
        with urllib.request.urlopen(request, timeout=30) as resp:
            answer = json.loads(resp.read())
        # then they are served, from the bars the collector stored in LocalStack's S3
        assert answer["count"] == 5
        s3 = boto3.client(
            "s3",
            endpoint_url=localstack,
            region_name="us-east-1",
            aws_access_key_id="test",
            aws_secret_access_key="test",
        )
        buckets = [b["Name"] for b in s3.list_buckets()["Buckets"]]
        assert "tradowix-local-candlesbucket" in buckets
        stored = s3.list_objects_v2(Bucket="tradowix-local-candlesbucket", Prefix="candles/1m/BTCUSD-OTC/")
        assert stored.get("KeyCount", 0) > 0
        # and the admin secret lives in LocalStack's SSM
        ssm = boto3.client(
            "ssm",
            endpoint_url=localstack,
            region_name="us-east-1",
            aws_access_key_id="test",
            aws_secret_access_key="test",
        )
        assert ssm.describe_parameters()["Parameters"]
        # and the embedded DynamoDB still enforced the template's IAM without refusing anything
        assert "AccessDenied:" not in stack.log()
    finally:
        stop_stack(stack)
