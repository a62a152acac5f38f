"""`admin --admin-only`: the owner's panel without the partner API, opened in the browser."""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.integration


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_admin_only_serves_the_panel_opens_it_and_hides_the_partner_api(tmp_path):
    port = free_port()
    opened = tmp_path / "opened-url"
    # webbrowser runs $BROWSER with the URL: here a command that writes it to a file
    recorder = f"{sys.executable} -c 'import sys; open(sys.argv[1], \"w\").write(sys.argv[2])' {shlex.quote(str(opened))} %s"
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(BROWSER=recorder, TRADOWIX_ADMIN_SECRET="owner-set-secret")
    log = (tmp_path / "stack.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "tradowix_bot.cli", "admin", "--admin-only", "--port", str(port),
         "--ws-port", str(free_port()), "--data-dir", str(tmp_path / "data")],
        stdout=log, stderr=subprocess.STDOUT, env=env, cwd=ROOT, start_new_session=True,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while not opened.exists():
            assert process.poll() is None, (tmp_path / "stack.log").read_text()
            assert time.monotonic() < deadline, "the admin panel was not opened in a browser"
            time.sleep(0.3)
        # then the browser was sent to the admin panel
        assert opened.read_text() == base + "/admin"
        # and the panel and its API answer, with the owner's secret (no secret printed)
        assert httpx.get(base + "/admin").status_code == 200
        assert httpx.post(base + "/api/admin/login", json={"secret": "owner-set-secret"}).status_code == 200
        assert "admin secret (shown once" not in (tmp_path / "stack.log").read_text()
        # and the banner advertises only what is served
        log = (tmp_path / "stack.log").read_text()
        assert f"admin panel: {base}/admin" in log
        for not_served in ("live WebSocket", "ws://", "curl", "chart:", "keys create"):
            assert not_served not in log, not_served
        # but nothing a partner uses is served
        for path in ("/api/candles?symbol=BTCUSD-OTC", "/api/symbols", "/", "/gate.html"):
            r = httpx.get(base + path)
            assert r.status_code == 404 and r.json()["error"] == "admin_only", path
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
