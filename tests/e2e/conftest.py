"""Browser fixtures: Debian's chromium driven by Playwright against the session's local stack.

Never `playwright install`: the browser is /usr/bin/chromium (tests/run.py installs it).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import time
from pathlib import Path

import httpx
import pytest

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
_SECRET_LINE = re.compile(r"admin secret \(shown once[^)]*\): (\S+)")


@pytest.fixture(scope="session")
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
    contexts, errors = [], []

    def make(width: int = 1280, height: int = 800):
        context = browser.new_context(viewport={"width": width, "height": height})
        contexts.append(context)
        page = context.new_page()
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.set_default_timeout(15_000)
        return page

    yield make
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


def screenshot(page, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path))
    return path


def sign_in_at_gate(page, api_url: str, raw_key: str) -> None:
    page.goto(api_url + "/gate.html")
    page.fill("#api-key", raw_key)
    page.click("#gate-submit")
    page.wait_for_url(lambda url: "/gate.html" not in url)
    wait_chart_ready(page)


def wait_chart_ready(page, timeframe: int | None = None) -> dict:
    # Attribute selectors, not wait_for_function: the pages' CSP forbids eval, which that uses.
    selector = "#chart[data-state='ready']"
    if timeframe is not None:
        selector += f"[data-timeframe='{timeframe}']"
    page.wait_for_selector(selector, state="attached")
    return chart_state(page)


def chart_state(page) -> dict:
    return page.eval_on_selector("#chart", "c => ({...c.dataset})")


def poll(check, timeout: float, interval: float = 0.25):
    """Calls check() until it returns something truthy; returns it, or None after `timeout` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(interval)
    return None


@contextlib.contextmanager
def stack_aws(stack):
    """Point this process's boto3 at the stack's emulator (to read or plant what the stack stores)."""
    from tradowix_bot import aws

    runtime = json.loads((stack.data_dir / "local-stack.json").read_text())
    wanted = {"AWS_ENDPOINT_URL": runtime["endpoint_url"], **runtime["aws_env"]}
    saved = {k: os.environ.get(k) for k in wanted}
    os.environ.update(wanted)
    aws.reset()
    try:
        yield runtime
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        aws.reset()


def stored_session_token(stack) -> str | None:
    from tradowix_bot import aws

    with stack_aws(stack):
        ssm = aws.client("ssm")
        names = [
            p["Name"] for p in ssm.describe_parameters()["Parameters"] if p["Name"].endswith("/session-token")
        ]
        if not names:
            return None
        return ssm.get_parameter(Name=names[0], WithDecryption=True)["Parameter"]["Value"]
