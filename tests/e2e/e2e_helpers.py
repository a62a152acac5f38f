"""Helpers for the browser tests (imported by the test modules; fixtures live in conftest.py)."""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path

from polling import eventually

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


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
    """The suite's polling helper (tests/polling.py) as the browser tests call it: returns what
    check() returned once truthy; fails the test after `timeout` s."""
    what = getattr(check, "__name__", "check")
    return eventually(
        check, timeout, f"{what} (in the browser)" if what != "<lambda>" else "the page", interval
    )


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
