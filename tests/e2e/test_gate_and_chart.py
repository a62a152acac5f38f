"""Given a local stack with synthetic history, when a partner uses the gate and the chart in a
real browser, then they see the candles the API serves and the chart follows their choices."""

from __future__ import annotations

import time
from urllib.parse import quote, urlparse

import httpx
import pytest
from e2e_helpers import screenshot, sign_in_at_gate, wait_chart_ready

pytestmark = pytest.mark.e2e


def api_count(stack, raw_key: str | None, symbol: str, timeframe: int, last_time: int) -> int:
    """How many candles /api/candles serves up to and including `last_time` (new bars may close meanwhile)."""
    headers = {"X-Api-Key": raw_key} if raw_key else {}
    r = httpx.get(
        stack.api_url + "/api/candles",
        params={"symbol": symbol, "timeframe": timeframe, "end": last_time + 1},
        headers=headers,
        timeout=10,
    )
    assert r.status_code == 200, r.text
    return r.json()["count"]


def test_gate_with_valid_key_sets_cookie_and_opens_the_chart(local_stack, partner_key, new_page):
    _, raw = partner_key
    page = new_page()
    # given the gate page
    page.goto(local_stack.api_url + "/gate.html")
    screenshot(page, "gate")
    # when the partner enters a valid key
    sign_in_at_gate(page, local_stack.api_url, raw)
    # then the chart opens, with an HttpOnly session cookie that is not the key
    cookies = {c["name"]: c for c in page.context.cookies()}
    assert cookies["twk_session"]["httpOnly"] is True
    assert raw not in cookies["twk_session"]["value"]
    assert raw not in page.content()
    assert page.evaluate("JSON.stringify({...localStorage, ...sessionStorage})").find(raw) == -1


def test_gate_with_invalid_key_explains_and_stays(local_stack, partner_key, new_page):
    page = new_page()
    page.goto(local_stack.api_url + "/gate.html")
    page.fill("#api-key", "twk_" + "x" * 43)
    page.click("#gate-submit")
    message = page.locator("#gate-message")
    message.wait_for(state="visible")
    assert "not valid" in message.inner_text()
    assert page.url.endswith("/gate.html")
    assert not any(c["name"] == "twk_session" for c in page.context.cookies())
    screenshot(page, "gate-invalid-key")


def test_gate_with_disabled_key_says_it_is_disabled(local_stack, admin_api, partner_key, new_page):
    key_id, raw = partner_key
    assert admin_api.post(f"/api/admin/keys/{key_id}/disable").status_code == 200
    page = new_page()
    page.goto(local_stack.api_url + "/gate.html")
    page.fill("#api-key", raw)
    page.click("#gate-submit")
    message = page.locator("#gate-message")
    message.wait_for(state="visible")
    assert "disabled" in message.inner_text()
    assert page.url.endswith("/gate.html")


def test_chart_without_cookie_goes_to_the_gate_once_a_key_exists(local_stack, partner_key, new_page):
    page = new_page()
    page.goto(local_stack.api_url + "/?symbol=ETHUSD-OTC")
    page.wait_for_url(lambda url: "/gate.html" in url)
    assert "next=" in page.url


def test_chart_shows_as_many_candles_as_the_api_serves(local_stack, partner_key, new_page):
    _, raw = partner_key
    page = new_page()
    sign_in_at_gate(page, local_stack.api_url, raw)
    # when the partner opens EURUSD-OTC on 15m
    page.goto(local_stack.api_url + "/?symbol=EURUSD-OTC&tf=900")
    shown = wait_chart_ready(page, 900)
    # then the page drew what the API serves for that symbol and timeframe
    assert shown["symbol"] == "EURUSD-OTC"
    expected = api_count(local_stack, raw, "EURUSD-OTC", 900, int(shown["historyLastTime"]))
    assert int(shown["historyCount"]) == expected > 0
    assert int(shown["candleCount"]) >= expected
    # and the symbol picker groups the markets by category
    groups = page.eval_on_selector_all("#symbol optgroup", "gs => gs.map(g => g.label)")
    assert {"Crypto", "Currencies"} <= set(groups)
    # and a countdown to the bar's close is running
    left = int(page.get_attribute("#countdown", "data-seconds-left"))
    assert 0 <= left <= 900


def test_switching_timeframe_reloads_history(local_stack, partner_key, new_page):
    _, raw = partner_key
    page = new_page()
    sign_in_at_gate(page, local_stack.api_url, raw)
    page.goto(local_stack.api_url + "/?symbol=BTCUSD-OTC&tf=60")
    one_minute = wait_chart_ready(page, 60)
    screenshot(page, "chart")
    # when the partner picks 5m
    page.click("#timeframes button[data-tf='300']")
    five = wait_chart_ready(page, 300)
    # then the chart reloads 5m bars: about a fifth as many, exactly what the API serves
    assert page.get_attribute("#timeframes button[data-tf='300']", "aria-pressed") == "true"
    assert int(five["historyCount"]) == api_count(
        local_stack, raw, "BTCUSD-OTC", 300, int(five["historyLastTime"])
    )
    assert int(five["historyCount"]) < int(one_minute["historyCount"]) / 4
    assert "tf=300" in page.url
    # and 4h works too (the largest timeframe of the picker)
    page.click("#timeframes button[data-tf='14400']")
    four_hours = wait_chart_ready(page, 14400)
    assert 0 < int(four_hours["historyCount"]) <= 7 * 6 + 1


def test_chart_is_usable_on_a_phone(local_stack, partner_key, new_page):
    _, raw = partner_key
    page = new_page(390, 844)
    sign_in_at_gate(page, local_stack.api_url, raw)
    wait_chart_ready(page)
    # no sideways scrolling, and the chart takes most of the screen
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    box = page.locator("#chart").bounding_box()
    assert box["height"] > 500 and box["width"] >= 380
    assert page.locator("#timeframes").is_visible() and page.locator("#connection").is_visible()
    screenshot(page, "chart-phone")


def test_open_mode_chart_opens_directly(local_stack, admin_api, new_page):
    """Deletes every key of the session's stack: keys exist only inside other tests' fixtures."""
    for record in admin_api.get("/api/admin/keys").json()["keys"]:
        admin_api.delete(f"/api/admin/keys/{record['key_id']}")
    deadline = time.monotonic() + 15  # the key cache bound of the test stack is 2 s
    while httpx.get(local_stack.api_url + "/api/symbols").status_code != 200:
        assert time.monotonic() < deadline, "the API did not open after the last key was deleted"
        time.sleep(0.5)
    page = new_page()
    page.goto(local_stack.api_url + "/")
    wait_chart_ready(page)
    assert urlparse(page.url).path == "/"
    # and the gate says the chart is open
    page.goto(local_stack.api_url + "/gate.html")
    page.locator("#open-mode").wait_for(state="visible")


def test_gate_never_redirects_off_site(local_stack, partner_key, new_page):
    _, raw = partner_key
    for target in ("//example.invalid/", "/\\example.invalid/", "https://example.invalid/"):
        page = new_page()
        page.route(lambda url: urlparse(url).hostname == "example.invalid", lambda route: route.abort())
        page.goto(local_stack.api_url + "/gate.html?next=" + quote(target, safe=""))
        page.fill("#api-key", raw)
        page.click("#gate-submit")
        page.wait_for_url(lambda url: "/gate.html" not in url)
        assert page.url.startswith(local_stack.api_url + "/"), (target, page.url)
