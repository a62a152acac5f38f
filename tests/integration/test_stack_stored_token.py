"""Given a local stack running on synthetic data, when the owner stores a Tradowix session token
in the admin panel and restarts the stack, then the collector collects from the upstream with
that token (here a stand-in upstream on 127.0.0.1), and the owner is warned that the data dir
already holds made-up prices."""

from __future__ import annotations

import httpx
import pytest
from polling import eventually
from tradowix_bot.collector import Clock
from upstream_standin import StandinUpstream

pytestmark = pytest.mark.integration
ADMIN_SECRET = "admin-secret-for-this-test"


def upstream_status(api_url: str) -> dict:
    return httpx.get(api_url + "/api/live/status", timeout=10).json()["upstream"]


def test_a_token_stored_in_the_admin_panel_is_used_after_a_restart(tmp_path, stacks):
    start_stack, stop_stack = stacks
    upstream = StandinUpstream(Clock()).start()
    env = {"TRADOWIX_ADMIN_SECRET": ADMIN_SECRET, "TRADOWIX_WS_URL": upstream.url}
    data_dir = tmp_path / "data"
    try:
        # given a stack with no token (synthetic data) whose owner stores one in the admin panel
        stack = start_stack(data_dir, "--no-archive", env=env)
        try:
            assert upstream_status(stack.api_url)["source"] == "synthetic"
            with httpx.Client(base_url=stack.api_url, timeout=10) as admin:
                login = admin.post("/api/admin/login", json={"secret": ADMIN_SECRET})
                assert login.status_code == 200, login.text
                r = admin.put(
                    "/api/admin/session-token",
                    json={"token": "good-token"},
                    headers={"X-CSRF-Token": login.json()["csrf_token"]},
                )
                assert r.status_code == 200, r.text
        finally:
            stop_stack(stack)
        # when the stack is started again on the same data dir
        stack = start_stack(data_dir, "--no-archive", env=env)
        try:
            # then its collector authenticates at the upstream with the stored token
            eventually(
                lambda: (s := upstream_status(stack.api_url))["source"] == "tradowix" and s["authenticated"],
                60,
                "the collector authenticated at the upstream with the stored token",
                interval=0.5,
            )
            assert upstream.auth_attempts >= 1
            # and the owner was told the data dir holds synthetic bars; the token never shows
            assert "holds synthetic bars" in stack.log()
            assert "good-token" not in stack.log()
        finally:
            stop_stack(stack)
    finally:
        upstream.stop()
