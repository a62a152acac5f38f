"""Given the owner runs `admin --admin-only` (its $BROWSER records the URL it is sent), when the
stack is ready, then the admin panel is opened and served with the owner's secret, and nothing
of the partner API is served."""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from local_stacks import env_without_aws, free_port
from polling import eventually

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.integration


def test_admin_only_serves_the_panel_opens_it_and_hides_the_partner_api(tmp_path):
    # given: the owner's secret set, and a browser that records the URL it opens
    port = free_port()
    opened = tmp_path / "opened-url"
    # webbrowser runs $BROWSER with the URL: here a command that writes it to a file
    recorder = f"{sys.executable} -c 'import sys; open(sys.argv[1], \"w\").write(sys.argv[2])' {shlex.quote(str(opened))} %s"
    env = env_without_aws(BROWSER=recorder, TRADOWIX_ADMIN_SECRET="owner-set-secret")
    log = (tmp_path / "stack.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "tradowix_bot.cli", "admin", "--admin-only", "--port", str(port),
         "--ws-port", str(free_port()), "--data-dir", str(tmp_path / "data")],
        stdout=log, stderr=subprocess.STDOUT, env=env, cwd=ROOT, start_new_session=True,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        # when it is ready, then the browser was sent to the admin panel
        eventually(
            lambda: (opened.exists() and opened.read_text()) or process.poll() is not None,
            180,
            "the admin panel opened in a browser",
            interval=0.3,
        )
        assert process.poll() is None, (tmp_path / "stack.log").read_text()
        assert opened.read_text() == base + "/admin"
        # and the panel and its API answer, with the owner's secret (no secret printed); generous
        # timeouts: the first request imports the function, slow on a loaded machine
        http = httpx.Client(timeout=60)
        assert http.get(base + "/admin").status_code == 200
        assert http.post(base + "/api/admin/login", json={"secret": "owner-set-secret"}).status_code == 200
        assert "admin secret (shown once" not in (tmp_path / "stack.log").read_text()
        # and the banner advertises only what is served
        log = (tmp_path / "stack.log").read_text()
        assert f"admin panel: {base}/admin" in log
        for not_served in ("live WebSocket", "ws://", "curl", "chart:", "keys create"):
            assert not_served not in log, not_served
        # but nothing a partner uses is served
        for path in ("/api/candles?symbol=BTCUSD-OTC", "/api/symbols", "/", "/gate.html"):
            r = http.get(base + path)
            assert r.status_code == 404 and r.json()["error"] == "admin_only", path
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
