"""Browser fixtures: Debian's chromium driven by Playwright against the session's local stack.

Never `playwright install`: the browser is /usr/bin/chromium (tests/run.py installs it).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import httpx
import pytest

CHROMIUM = "/usr/bin/chromium"
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
_SECRET_LINE = re.compile(r"admin secret \(shown once[^)]*\): (\S+)")


# Per module, not per session: while Playwright's sync API is open it marks its event loop as
# running in this thread, so a later test of the same xdist worker could not call asyncio.run().
@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: run python3 tests/run.py (it installs Debian's chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=LAUNCH_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def new_page(browser):
    """Factory of pages, each in its own context (own cookies); page errors fail the test."""
    contexts, pages, errors = [], [], []

    def make(width: int = 1280, height: int = 800, **context_options):
        """`context_options`: Playwright's, e.g. color_scheme="light", timezone_id="Asia/Kolkata"."""
        context = browser.new_context(viewport={"width": width, "height": height}, **context_options)
        contexts.append(context)
        page = context.new_page()
        pages.append(page)
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.set_default_timeout(15_000)
        return page

    yield make
    for page in pages:  # a request a test's route still holds must not fail the next test
        page.unroute_all(behavior="ignoreErrors")
    for context in contexts:
        context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


@pytest.fixture(scope="session")
def admin_secret(local_stack) -> str:
    """The secret the stack printed once at first start (or the one the owner set)."""
    if os.environ.get("TRADOWIX_ADMIN_SECRET"):
        return os.environ["TRADOWIX_ADMIN_SECRET"]
    found = _SECRET_LINE.findall(local_stack.log())
    assert len(found) == 1, "the local stack must print the generated admin secret exactly once"
    return found[0]


@pytest.fixture
def admin_api(local_stack, admin_secret):
    """An httpx client signed in to the admin API; `.csrf` holds the CSRF token."""
    with httpx.Client(base_url=local_stack.api_url, timeout=10) as client:
        r = client.post("/api/admin/login", json={"secret": admin_secret})
        assert r.status_code == 200, r.text
        client.headers["X-CSRF-Token"] = r.json()["csrf_token"]
        yield client


@pytest.fixture
def partner_key(admin_api):
    """A fresh enabled key for all symbols: (key_id, raw key). Deleted afterwards."""
    r = admin_api.post("/api/admin/keys", json={"name": "e2e partner"})
    assert r.status_code == 201, r.text
    body = r.json()
    yield body["record"]["key_id"], body["key"]
    admin_api.delete(f"/api/admin/keys/{body['record']['key_id']}")
