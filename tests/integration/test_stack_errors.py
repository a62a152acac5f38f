"""Given a data-service endpoint that is not running, when the newcomer starts the stack on it
(`chart --endpoint URL`), then it says so in one line and exits 1: no traceback, nothing served."""

from __future__ import annotations

import socket
import subprocess
import sys

import pytest

pytestmark = pytest.mark.integration


def test_an_endpoint_that_is_down_is_one_clear_line(tmp_path):
    with socket.socket() as closed:  # a port nothing listens on
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    result = subprocess.run(
        [sys.executable, "-m", "tradowix_bot.cli", "chart", "--no-browser", "--endpoint",
         f"http://127.0.0.1:{port}", "--data-dir", str(tmp_path / "data"), "--port", "0", "--ws-port", "0"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(errors) == 1 and errors[0].startswith("error:") and f"127.0.0.1:{port}" in errors[0]
    assert "Traceback" not in result.stderr and "ready" not in result.stdout
