"""Helpers for the browser tests (imported by the test modules; fixtures live in conftest.py)."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
import time
from pathlib import Path

from playwright.sync_api import Error as PlaywrightError
from polling import eventually

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"  # devDependency in package.json
# The two viewports every page is checked at: a laptop and a phone.
DESKTOP = (1440, 900)
PHONE = (390, 844)
VIEWPORTS = {"desktop": DESKTOP, "phone": PHONE}


def screenshot(page, name: str, full_page: bool = False) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page)
    return path


def serious_axe_violations(page) -> list[dict]:
    """Runs axe-core (from npm) in the page; returns its serious and critical violations, each
    with the selectors and the reason, so a failing assertion says what to fix."""
    assert AXE.exists(), f"{AXE} is missing: run python3 tests/run.py (it runs npm ci)"
    if not page.evaluate("typeof window.axe === 'object'"):
        page.evaluate(AXE.read_text())  # evaluated by the DevTools protocol: the page's CSP does not apply
    result = page.evaluate("async () => await axe.run(document, {resultTypes: ['violations']})")
    return [
        {
            "rule": v["id"],
            "impact": v["impact"],
            "nodes": [(n["target"], n.get("failureSummary", "")) for n in v["nodes"][:5]],
        }
        for v in result["violations"]
        if v["impact"] in ("serious", "critical")
    ]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ScriptedPeer:
    """A WebSocket server speaking the contract's live protocol as the test says: accepts
    connections, records what the page sends, sends what the test sends. The page is pointed
    at it by answering its /api/live/status call in the browser (`point_live_status_at`)."""

    def __init__(self, port: int):
        self.port = port
        self.received: list[dict] = []
        self.connections: list = []
        self.accepted = 0
        self.server = None

    def _handler(self, ws):
        self.accepted += 1
        self.connections.append(ws)
        ws.send(json.dumps({"type": "status", "connected": True, "upstream_ready": True}))
        for raw in ws:
            self.received.append(json.loads(raw))

    def start(self):
        from websockets.sync.server import serve

        self.server = serve(self._handler, "127.0.0.1", self.port)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self):
        self.server.shutdown()
        self.connections.clear()

    def send(self, message: dict):
        from websockets.exceptions import ConnectionClosed

        for ws in list(self.connections):
            with contextlib.suppress(ConnectionClosed):  # the page may have closed it meanwhile
                ws.send(json.dumps(message))

    def close_all(self, code: int, reason: str):
        for ws in list(self.connections):
            ws.close(code, reason)

    def subscribes(self) -> list[dict]:
        return [m for m in self.received if m.get("type") == "subscribe"]


def point_live_status_at(page, peer: ScriptedPeer) -> None:
    page.route(
        "**/api/live/status",
        lambda route: route.fulfill(
            json={"live": True, "ws_url": f"ws://127.0.0.1:{peer.port}", "upstream": {}}
        ),
    )


def sign_in_at_gate(page, api_url: str, raw_key: str) -> None:
    page.goto(api_url + "/gate.html")
    page.fill("#api-key", raw_key)
    page.click("#gate-submit")
    page.wait_for_url(lambda url: "/gate.html" not in url)
    wait_chart_ready(page)


def wait_until_at(page, part: str, within: float = 15) -> None:
    """Waits until the page's URL holds `part`. A navigation that another one aborted (the page's
    own redirect racing one the test started: ERR_ABORTED) is not the end: waiting goes on."""
    deadline = time.monotonic() + within
    while part not in page.url:
        left = deadline - time.monotonic()
        assert left > 0, f"the page never reached {part} (it is at {page.url})"
        with contextlib.suppress(PlaywrightError):
            page.wait_for_url(lambda url: part in url, timeout=left * 1000)


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
    from tradowix_bot.server import aws

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
    from tradowix_bot.server import aws

    with stack_aws(stack):
        ssm = aws.client("ssm")
        names = [
            p["Name"] for p in ssm.describe_parameters()["Parameters"] if p["Name"].endswith("/session-token")
        ]
        if not names:
            return None
        return ssm.get_parameter(Name=names[0], WithDecryption=True)["Parameter"]["Value"]
