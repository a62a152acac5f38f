"""Shared fixtures: in-process moto for unit tests (integration tests start a real stack)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "functions" / "api"))

# Unit tests never talk to a real AWS account.
os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")


@pytest.fixture
def aws_env(monkeypatch):
    """moto in-process with the template's resources created; yields their names."""
    from moto import mock_aws
    from tradowix_bot import aws
    from tradowix_local.template import Template

    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    template = Template()
    with mock_aws():
        aws.reset()
        import boto3

        names = {}
        for logical_id in template.of_type("AWS::S3::Bucket"):
            names[logical_id] = template.physical_name(logical_id)
            boto3.client("s3").create_bucket(Bucket=names[logical_id])
        for logical_id, res in template.of_type("AWS::DynamoDB::Table").items():
            names[logical_id] = template.physical_name(logical_id)
            props = template.resolve(res["Properties"])
            kwargs = {k: props[k] for k in ("AttributeDefinitions", "KeySchema") if k in props}
            if props.get("GlobalSecondaryIndexes"):
                kwargs["GlobalSecondaryIndexes"] = props["GlobalSecondaryIndexes"]
            boto3.client("dynamodb").create_table(
                TableName=names[logical_id], BillingMode="PAY_PER_REQUEST", **kwargs
            )
        for function in ("ApiFunction", "AdminFunction"):  # the HTTP API's two functions
            for k, v in template.functions()[function].environment.items():
                monkeypatch.setenv(k, v)
        yield names
        aws.reset()


# -- a real local stack, started once per test session --------------------------------------
import json  # noqa: E402
import signal  # noqa: E402
import socket  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402
import urllib.request  # noqa: E402
from dataclasses import dataclass  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class RunningStack:
    api_url: str
    ws_url: str
    data_dir: Path
    process: subprocess.Popen
    log_path: Path

    def env(self) -> dict[str, str]:
        """Environment for CLI commands that should find this stack with no configuration."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env["TRADOWIX_DATA_DIR"] = str(self.data_dir)
        return env

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "tradowix_bot.cli", *args],
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=60,
            check=check,
        )

    def create_key(self, name: str = "partner", symbols: str | None = None) -> tuple[str, str]:
        """Returns (key_id, raw key) of a new key made with the CLI."""
        args = ["keys", "create", "--name", name] + (["--symbols", symbols] if symbols else [])
        out = self.cli(*args).stdout.strip().splitlines()
        raw = out[-1]
        key_id = out[0].split()[1]
        return key_id, raw

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def start_stack(data_dir: Path, *extra: str, timeout: float = 90, env: dict | None = None) -> RunningStack:
    port, ws_port = free_port(), free_port()
    log_path = data_dir.with_suffix(".log")
    data_dir.mkdir(parents=True, exist_ok=True)
    extra_env = env or {}
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(KEY_CACHE_SECONDS=os.environ.get("TEST_KEY_CACHE_SECONDS", "2"), **extra_env)
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tradowix_bot.cli",
            "chart",
            "--no-browser",
            "--port",
            str(port),
            "--ws-port",
            str(ws_port),
            "--data-dir",
            str(data_dir),
            *extra,
        ],
        stdout=log_path.open("w"),
        stderr=subprocess.STDOUT,
        env=env,
        cwd=ROOT,
        start_new_session=True,
    )
    stack = RunningStack(f"http://127.0.0.1:{port}", f"ws://127.0.0.1:{ws_port}", data_dir, process, log_path)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"local stack exited with {process.returncode}:\n{stack.log()}")
        runtime = data_dir / "local-stack.json"
        if runtime.exists():
            try:
                with urllib.request.urlopen(stack.api_url + "/api/docs", timeout=2) as resp:
                    if resp.status == 200 and json.loads(runtime.read_text())["pid"] == process.pid:
                        return stack
            except OSError:
                pass
        time.sleep(0.2)
    stop_stack(stack)
    raise RuntimeError(f"local stack not ready after {timeout}s:\n{stack.log()}")


def assert_no_access_denied(stack: RunningStack) -> None:
    """The stack enforces template.yaml's IAM: a call a role may not make is a bug even when the
    caller swallows the AccessDenied, so the session's stacks must have refused none."""
    refused = sorted({line for line in stack.log().splitlines() if "AccessDenied:" in line})
    assert not refused, "calls the template does not allow:\n" + "\n".join(refused)


def stop_stack(stack: RunningStack) -> int:
    if stack.process.poll() is None:
        stack.process.send_signal(signal.SIGINT)
        try:
            stack.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(stack.process.pid, signal.SIGKILL)
            stack.process.wait()
    return stack.process.returncode


@pytest.fixture(scope="session")
def local_stack(tmp_path_factory):
    """One local stack for the session's integration and e2e tests (synthetic data seeded)."""
    stack = start_stack(tmp_path_factory.mktemp("stack") / "data")
    yield stack
    stop_stack(stack)
    assert_no_access_denied(stack)


@pytest.fixture(scope="session")
def stack_without_fanout(tmp_path_factory):
    """A second stack whose collector does not run the live fan-out, for tests that drive the
    publisher themselves and must see only their own messages."""
    stack = start_stack(tmp_path_factory.mktemp("quiet-stack") / "data", env={"TRADOWIX_LIVE_FANOUT": "off"})
    yield stack
    stop_stack(stack)
    assert_no_access_denied(stack)


@pytest.fixture
def stacks():
    """(start_stack, stop_stack) for tests that run stacks of their own (`conftest` is an
    ambiguous module name for the test files themselves)."""
    return start_stack, stop_stack
