"""Given a partner's chart that is live, when the server or the feed goes away, then the chart
keeps its candles, says since when they are stale, freezes the countdown and offers "retry now";
when data returns it fills the gap; a disabled key ends the stream at once (no reconnect loop)
and the gate says why. The live feed is a scripted peer (the page's /api/live/status answer
points at it); the candles come from the real local stack."""

from __future__ import annotations

import contextlib
import json
import re

import httpx
import pytest
from e2e_helpers import (
    ScriptedPeer,
    chart_state,
    free_port,
    point_live_status_at,
    poll,
    screenshot,
    sign_in_at_gate,
    wait_chart_ready,
)
from playwright.sync_api import Error as PlaywrightError

pytestmark = pytest.mark.e2e

MISSED = 10  # bars the page "missed" before the outage: the gap to fill


@pytest.fixture
def peer():
    server = ScriptedPeer(free_port()).start()
    yield server
    server.stop()


def open_live_chart(page, stack, raw: str, peer: ScriptedPeer) -> dict:
    point_live_status_at(page, peer)
    sign_in_at_gate(page, stack.api_url, raw)
    page.goto(stack.api_url + "/?symbol=EURUSD-OTC&tf=60")
    state = wait_chart_ready(page, 60)
    page.wait_for_selector("#chart[data-connection='live']")
    return state


def api_times(stack, raw: str, end: int) -> list[int]:
    r = httpx.get(
        stack.api_url + "/api/candles",
        params={"symbol": "EURUSD-OTC", "timeframe": 60, "end": end},
        headers={"X-Api-Key": raw},
        timeout=10,
    )
    return [c["time"] for c in r.json()["candles"]]


def test_outage_keeps_candles_marks_them_stale_and_retry_fills_the_gap(
    local_stack, partner_key, new_page, peer
):
    _, raw = partner_key
    page = new_page()

    # given the page's first history lacks the newest bars (as if it had been away when they closed)
    def history_without_newest(route):
        answer = route.fetch()
        body = answer.json()
        if "start=" not in route.request.url:
            body["candles"] = body["candles"][:-MISSED]
            body["count"] = len(body["candles"])
        route.fulfill(response=answer, body=json.dumps(body))

    page.route("**/api/candles?*", history_without_newest)
    before = open_live_chart(page, local_stack, raw, peer)
    shown = int(before["candleCount"])
    assert shown > 1000
    # when the server and the live feed both go away
    page.route("**/api/candles?*", lambda route: route.abort())
    peer.stop()
    # then the candles stay, and the chart says they are stale and since when
    page.wait_for_selector("#chart[data-stale='true']", timeout=10_000)
    assert int(chart_state(page)["candleCount"]) == shown
    banner = page.locator("#stale")
    assert banner.is_visible() and page.locator("#retry-now").is_visible()
    assert re.search(r"last update \d\d:\d\d:\d\d UTC", banner.inner_text()), banner.inner_text()
    assert page.locator("#connection").inner_text() in ("reconnecting…", "offline · retrying")
    screenshot(page, "chart-outage-stale")
    # when the server is back and the partner presses "retry now"
    page.unroute("**/api/candles?*")
    peer.start()
    page.click("#retry-now")
    # then the chart is live again, not stale, and the gap is filled: exactly the API's bars
    page.wait_for_selector("#chart[data-stale='false'][data-connection='live']", timeout=15_000)
    after = chart_state(page)
    assert int(after["candleCount"]) >= shown + MISSED
    page_times = page.evaluate("state.candles.map(c => c.time)")
    assert page_times == api_times(local_stack, raw, page_times[-1] + 1)
    assert page.locator("#stale").is_hidden()


def test_countdown_freezes_while_offline_and_runs_while_live(local_stack, partner_key, new_page, peer):
    _, raw = partner_key
    page = new_page()
    open_live_chart(page, local_stack, raw, peer)
    # given a live chart, whose countdown runs
    first = page.inner_text("#countdown-value")
    assert poll(lambda: page.inner_text("#countdown-value") != first, timeout=3)
    assert page.get_attribute("#countdown", "data-frozen") == "false"
    # when the live feed drops
    peer.stop()
    page.wait_for_selector("#countdown[data-frozen='true']")
    # then the countdown stops where it was, and says so
    frozen = page.inner_text("#countdown-value")
    page.wait_for_timeout(2200)
    assert page.inner_text("#countdown-value") == frozen
    assert "paused" in page.inner_text("#countdown")
    # when the feed is back, then it runs again
    peer.start()
    page.wait_for_selector("#countdown[data-frozen='false']", timeout=15_000)
    assert poll(lambda: page.inner_text("#countdown-value") != frozen, timeout=3)


@pytest.mark.parametrize("how", ["close 4401", "error message"])
def test_disabled_key_ends_the_stream_and_the_gate_says_so(
    local_stack, admin_api, partner_key, new_page, peer, how
):
    key_id, raw = partner_key
    page = new_page()
    open_live_chart(page, local_stack, raw, peer)
    connections = peer.accepted
    # given the owner disables the key while the chart is open
    assert admin_api.post(f"/api/admin/keys/{key_id}/disable").status_code == 200
    # when the live feed says so: close code 4401 (the contract), or an error message then a close
    if how == "close 4401":
        peer.close_all(4401, "key_disabled")
    else:
        peer.send({"type": "error", "error": "key_disabled", "message": "this API key is disabled"})
        peer.close_all(1000, "")
    # then the page goes to the gate, which says the key was disabled
    page.wait_for_url(lambda url: "/gate.html" in url, timeout=10_000)
    reason = page.locator("#gate-reason")
    reason.wait_for(state="visible")
    assert "disabled by the owner" in reason.inner_text()
    screenshot(page, "gate-key-disabled")
    # and the page did not try to reconnect ("reconnecting…" every few seconds)
    page.wait_for_timeout(1500)
    assert peer.accepted == connections


def test_disabled_key_on_the_real_stream_sends_the_chart_to_the_gate(
    local_stack, admin_api, partner_key, new_page
):
    """The same against the stack's own WebSocket: its key check runs every
    LIVE_REVALIDATE_SECONDS (2 s on the test stacks, 10 s by default)."""
    key_id, raw = partner_key
    page = new_page()
    sign_in_at_gate(page, local_stack.api_url, raw)
    page.wait_for_selector("#chart[data-connection='live']")
    states: list[str] = []

    def at_gate() -> bool:
        if "/gate.html" in page.url:
            return True
        with contextlib.suppress(PlaywrightError):  # the page may be navigating away right now
            states.append(page.get_attribute("#chart", "data-connection") or "")
        return False

    # when the owner disables the key
    assert admin_api.post(f"/api/admin/keys/{key_id}/disable").status_code == 200
    # then within the server's bound the chart goes to the gate, which says why, without ever
    # showing "reconnecting…" in between
    assert poll(at_gate, timeout=25), states
    page.wait_for_url(lambda url: "/gate.html" in url)
    page.locator("#gate-reason").wait_for(state="visible")
    assert "disabled by the owner" in page.inner_text("#gate-reason")
    assert "reconnecting" not in states, states
