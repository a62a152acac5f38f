"""Given the owner in the admin panel, then each key's rate limit (its own, or the deployment's
default) and its use this minute are shown, and the owner changes it in the panel: the partner
API then answers with that limit (X-RateLimit-Limit) and refuses past it (429)."""

from __future__ import annotations

import httpx
import pytest
from e2e_helpers import poll, screenshot
from test_admin_panel import row, sign_in

pytestmark = pytest.mark.e2e


def limit_header(api_url: str, raw: str) -> str | None:
    r = httpx.get(api_url + "/api/symbols", headers={"X-Api-Key": raw}, timeout=10)
    return r.headers.get("x-ratelimit-limit")


def test_rate_limit_is_shown_and_edited_in_the_panel(local_stack, admin_secret, admin_api, new_page):
    created = admin_api.post("/api/admin/keys", json={"name": "limited bot"}).json()
    key_id, raw = created["record"]["key_id"], created["key"]
    default = admin_api.get("/api/admin/rate-limit").json()["default_per_minute"]
    try:
        # given a key on the deployment's default, that made three requests this minute
        for _ in range(3):
            assert limit_header(local_stack.api_url, raw) == str(default)
        page = new_page()
        sign_in(page, local_stack.api_url, admin_secret)
        cell = row(page, "limited bot").locator("td.limit")
        assert f"{default:,}/min" in cell.inner_text() and "default" in cell.inner_text()
        # (the three requests fall in one window unless a minute starts between them: then fewer)
        assert f"of {default:,} used this minute" in cell.inner_text()
        # when the owner sets 2 requests a minute in the panel
        row(page, "limited bot").locator("[data-action='limit']").click()
        page.uncheck("#limit-default")
        page.fill("#limit-value", "0")
        page.click("#limit-save")
        assert "whole number" in page.inner_text("#limit-message")  # 0 is refused, dialog stays
        page.fill("#limit-value", "2")
        screenshot(page, "admin-rate-limit-dialog")
        page.click("#limit-save")
        # then the table shows it, and the API answers with that limit and refuses past it
        assert poll(lambda: "2/min" in cell.inner_text(), timeout=5)
        assert poll(lambda: limit_header(local_stack.api_url, raw) == "2", timeout=10)
        statuses = [
            httpx.get(
                local_stack.api_url + "/api/symbols", headers={"X-Api-Key": raw}, timeout=10
            ).status_code
            for _ in range(3)
        ]
        assert 429 in statuses
        # when the owner goes back to the default, then the default applies again
        row(page, "limited bot").locator("[data-action='limit']").click()
        page.check("#limit-default")
        page.click("#limit-save")
        assert poll(lambda: f"{default:,}/min" in cell.inner_text(), timeout=5)
        record = next(k for k in admin_api.get("/api/admin/keys").json()["keys"] if k["key_id"] == key_id)
        assert record["rate_limit"] is None
    finally:
        admin_api.delete(f"/api/admin/keys/{key_id}")
