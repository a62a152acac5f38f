"""Given the local stack and its admin secret, when the owner uses the admin panel in a real
browser, then keys, markets and the session token change as they see it, and nothing leaks."""

from __future__ import annotations

import httpx
import pytest
from e2e_helpers import poll, screenshot, stack_aws, stored_session_token

pytestmark = pytest.mark.e2e

XSS_NAME = '<img src=x onerror="window.__xss=1"><script>window.__xss=2</script>&amp; "q"'


def sign_in(page, api_url: str, secret: str) -> None:
    page.goto(api_url + "/admin")
    page.fill("#admin-secret", secret)
    page.click("#login-submit")
    page.wait_for_selector("body[data-view='panel']")
    page.wait_for_selector("#keys-section[data-count]", state="attached")


def create_in_panel(page, name: str) -> str:
    page.fill("#key-name", name)
    page.click("#create-key")
    page.locator("#new-key").wait_for(state="visible")
    return page.input_value("#new-key-value")


def row(page, name: str):
    return page.locator("#keys-body tr", has=page.locator("td.name", has_text=name))


def candles_status(api_url: str, raw: str) -> int:
    r = httpx.get(
        api_url + "/api/candles", params={"symbol": "BTCUSD-OTC", "limit": 3}, headers={"X-Api-Key": raw}
    )
    return r.status_code


def test_wrong_secret_then_right_secret(local_stack, admin_secret, new_page):
    page = new_page()
    page.goto(local_stack.api_url + "/admin")
    page.wait_for_selector("body[data-view='login']")
    screenshot(page, "admin-login")
    page.fill("#admin-secret", "not-the-secret")
    page.click("#login-submit")
    message = page.locator("#login-message")
    message.wait_for(state="visible")
    assert "wrong admin secret" in message.inner_text()
    assert page.locator("#panel-view").is_hidden()
    sign_in(page, local_stack.api_url, admin_secret)
    cookie = next(c for c in page.context.cookies() if c["name"] == "twk_admin")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"


def test_created_key_works_with_curl_until_disabled(local_stack, admin_secret, partner_key, new_page):
    # (partner_key keeps another key alive: deleting the last key would open the API to all)
    page = new_page()
    sign_in(page, local_stack.api_url, admin_secret)
    # when the owner creates a key
    raw = create_in_panel(page, "curl partner")
    # then it is shown once, with a warning and a copy button, and it works at once
    assert raw.startswith("twk_")
    assert "will not be shown again" in page.inner_text("#new-key")
    assert page.locator("#copy-key").is_visible()
    the_row = row(page, "curl partner")
    assert the_row.get_attribute("data-enabled") == "true"
    screenshot(page, "admin")
    assert candles_status(local_stack.api_url, raw) == 200
    # and after "Done" (confirming: it was not copied) the key is gone from the page for good
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("#dismiss-key")
    page.locator("#new-key").wait_for(state="hidden")
    assert page.input_value("#new-key-value") == ""
    assert raw not in page.content()
    page.reload()
    page.wait_for_selector("body[data-view='panel']")
    assert raw not in page.content()
    # when the owner disables it, then it stops working (within the key cache bound: 2 s in tests)
    row(page, "curl partner").locator("[data-action='disable']").click()
    assert poll(lambda: row(page, "curl partner").get_attribute("data-enabled") == "false", timeout=5)
    assert poll(lambda: candles_status(local_stack.api_url, raw) == 401, timeout=10)
    # and enabling brings it back; deleting removes it everywhere
    row(page, "curl partner").locator("[data-action='enable']").click()
    assert poll(lambda: row(page, "curl partner").get_attribute("data-enabled") == "true", timeout=5)
    assert poll(lambda: candles_status(local_stack.api_url, raw) == 200, timeout=10)
    page.once("dialog", lambda dialog: dialog.accept())
    row(page, "curl partner").locator("[data-action='delete']").click()
    row(page, "curl partner").wait_for(state="detached")
    assert poll(lambda: candles_status(local_stack.api_url, raw) == 401, timeout=10)


def test_market_picker_restricts_a_key(local_stack, admin_secret, new_page):
    page = new_page()
    sign_in(page, local_stack.api_url, admin_secret)
    raw = create_in_panel(page, "eur only")
    row(page, "eur only").locator("[data-action='markets']").click()
    page.uncheck("#picker-all")
    page.check("#picker-list input[value='EURUSD-OTC']")
    screenshot(page, "admin-market-picker")
    page.click("#picker-save")
    page.wait_for_selector("#keys-body tr .chip:text('EURUSD-OTC')")
    r = httpx.get(local_stack.api_url + "/api/symbols", headers={"X-Api-Key": raw})
    assert [s["symbol"] for s in r.json()["symbols"]] == ["EURUSD-OTC"]
    r = httpx.get(
        local_stack.api_url + "/api/candles", params={"symbol": "BTCUSD-OTC"}, headers={"X-Api-Key": raw}
    )
    assert r.status_code == 403


def test_html_in_a_key_name_is_shown_as_text_everywhere(local_stack, admin_secret, new_page):
    page = new_page()
    sign_in(page, local_stack.api_url, admin_secret)
    raw = create_in_panel(page, XSS_NAME)
    # then the panel shows the name literally: in the table and in the "new key" note
    assert XSS_NAME in page.inner_text("#new-key-for")
    cell = page.locator("#keys-body td.name").filter(has_text="window.__xss=2").first
    assert cell.inner_text().startswith(XSS_NAME)
    # and the gate's "signed in as" line shows it as text too
    gate = new_page()
    gate.goto(local_stack.api_url + "/gate.html")
    gate.fill("#api-key", raw)
    gate.click("#gate-submit")
    gate.wait_for_url(lambda url: "/gate.html" not in url)
    gate.goto(local_stack.api_url + "/gate.html")
    gate.locator("#signed-in").wait_for(state="visible")
    assert XSS_NAME in gate.inner_text("#signed-in")
    for p in (page, gate):
        assert p.evaluate("window.__xss") is None
        assert p.locator("img[src='x']").count() == 0


def test_session_token_is_write_only(local_stack, admin_secret, new_page):
    token = "tdx_session_" + "s3cr3t" * 8
    page = new_page()
    sign_in(page, local_stack.api_url, admin_secret)
    page.fill("#session-token", token)
    page.once("dialog", lambda dialog: dialog.accept())  # "store/replace the token?"
    page.click("#token-save")
    page.wait_for_selector("#token-message.ok")  # saved (a token may have been set before)
    assert page.inner_text("#token-status").startswith("Stored on")
    # the field is emptied and the page never holds the value, not even after a reload
    assert page.input_value("#session-token") == ""
    assert token not in page.content()
    page.reload()
    page.wait_for_selector("#token-section[data-set='true']")
    assert page.input_value("#session-token") == ""
    assert token not in page.content()
    assert token not in local_stack.log()
    assert stored_session_token(local_stack) == token  # stored for the collector, as sent


def test_panel_shows_the_upstream_status(local_stack, admin_secret, new_page):
    from tradowix_bot.server.state import StateStore

    # given the collector reported a connected upstream (written where the collector writes it)
    with stack_aws(local_stack) as runtime:
        StateStore(runtime["state_table"]).write_upstream_status(
            {"connected": True, "authenticated": True, "source": "synthetic", "last_error": None}
        )
    page = new_page()
    sign_in(page, local_stack.api_url, admin_secret)
    page.wait_for_selector("#upstream-pill.pill-live")
    assert "synthetic" in page.inner_text("#upstream-details")


def test_too_long_session_token_is_explained_in_the_panel(local_stack, admin_secret, new_page):
    page = new_page()
    sign_in(page, local_stack.api_url, admin_secret)
    before = stored_session_token(local_stack)
    page.fill("#session-token", "t" * 10_000)
    page.click("#token-save")
    message = page.locator("#token-message")
    message.wait_for(state="visible")
    assert "10,000 characters" in message.inner_text()
    assert stored_session_token(local_stack) == before
    page.click("#token-save")  # now empty
    page.wait_for_selector("#token-message:text('empty')")
    assert stored_session_token(local_stack) == before
