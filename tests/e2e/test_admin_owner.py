"""Given the owner in the admin panel (Chromium, 1440x900 and 390x844), then every key row shows
its name and its actions without sideways scrolling, a new key is never discarded uncopied
without asking, the owner opens the chart without making a key, the session token is confirmed
and checked before it is stored, the panel's token and upstream lines agree, and the health of
every market is shown, stale ones highlighted."""

from __future__ import annotations

import time

import httpx
import pytest
from e2e_helpers import VIEWPORTS, screenshot, stack_aws, stored_session_token, wait_chart_ready
from test_admin_panel import create_in_panel, sign_in

pytestmark = pytest.mark.e2e

LONG_NAME = "partner-alpha signal bot for the London session (EUR and GBP)"


@pytest.fixture
def three_keys(admin_api):
    """Keys of every shape a row can have: a long name, a restricted key, a disabled one."""
    made = []
    for name, symbols in [
        (LONG_NAME, None),
        ("fx only", ["EURUSD-OTC", "GBPUSD-OTC", "USDJPY-OTC"]),
        ("old bot", None),
    ]:
        r = admin_api.post("/api/admin/keys", json={"name": name, "symbols": symbols})
        assert r.status_code == 201, r.text
        made.append(r.json()["record"]["key_id"])
    admin_api.post(f"/api/admin/keys/{made[2]}/disable")
    yield made
    for key_id in made:
        admin_api.delete(f"/api/admin/keys/{key_id}")


def within(inner: dict, outer: dict) -> bool:
    return (
        inner["x"] >= outer["x"] - 0.5
        and inner["x"] + inner["width"] <= outer["x"] + outer["width"] + 0.5
        and inner["width"] > 0
    )


@pytest.mark.parametrize("viewport", list(VIEWPORTS))
def test_every_key_row_shows_its_name_and_actions_without_sideways_scrolling(
    local_stack, admin_secret, three_keys, new_page, viewport
):
    width, height = VIEWPORTS[viewport]
    page = new_page(width, height)
    sign_in(page, local_stack.api_url, admin_secret)
    screen = {"x": 0, "y": 0, "width": width, "height": height}
    # then the table needs no sideways scrolling: not in its frame, not on the page
    frame = page.eval_on_selector(
        ".keys-table", "t => [t.parentElement.scrollWidth, t.parentElement.clientWidth]"
    )
    assert frame[0] <= frame[1], f"the keys table is {frame[0]} px wide in a {frame[1]} px frame"
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    # and every row shows its name and all of its buttons, inside the screen and the frame
    table_box = page.locator(".table-wrap").first.bounding_box()
    for key_id in three_keys:
        the_row = page.locator(f"#keys-body tr[data-key-id='{key_id}']")
        the_row.scroll_into_view_if_needed()
        name = the_row.locator("td.name")
        assert name.is_visible() and within(name.bounding_box(), screen)
        actions = the_row.locator("td.actions button")
        assert actions.count() == 4
        for i in range(4):
            button = actions.nth(i)
            box = button.bounding_box()
            assert button.is_visible() and within(box, screen) and within(box, table_box), (
                key_id,
                button.inner_text(),
                box,
            )
            # each button names its key for screen readers ("Delete key fx only")
            assert page.evaluate("n => n.getAttribute('aria-label')", button.element_handle()).endswith(
                the_row.locator("td.name").inner_text().split("\n")[0]
            )
    screenshot(page, f"admin-keys-{viewport}", full_page=True)


def test_a_new_key_is_not_discarded_uncopied_without_asking(local_stack, admin_secret, admin_api, new_page):
    page = new_page()
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    sign_in(page, local_stack.api_url, admin_secret)
    before = {k["key_id"] for k in admin_api.get("/api/admin/keys").json()["keys"]}
    asked: list[str] = []

    def answer(accept: bool):
        def handler(dialog):
            asked.append(dialog.message)
            dialog.accept() if accept else dialog.dismiss()

        page.once("dialog", handler)

    try:
        # given a new key on screen, not copied
        first = create_in_panel(page, "first partner")
        # when the owner presses "Done" and answers "no" to the question, then the key stays
        answer(False)
        page.click("#dismiss-key")
        assert "has not been copied" in asked[-1]
        assert page.input_value("#new-key-value") == first and page.locator("#new-key").is_visible()
        # when the owner creates a second key and answers "no", then no key is made and the first stays
        page.fill("#key-name", "second partner")
        answer(False)
        page.click("#create-key")
        assert len(asked) == 2 and "first partner" in asked[-1]
        assert page.input_value("#new-key-value") == first
        names = [k["name"] for k in admin_api.get("/api/admin/keys").json()["keys"]]
        assert "second partner" not in names
        # when they answer "yes", then the second key replaces the first on screen
        answer(True)
        page.click("#create-key")
        deadline = time.monotonic() + 10
        while page.input_value("#new-key-value") in (first, ""):
            assert time.monotonic() < deadline, "the second key was not shown"
            page.wait_for_timeout(100)
        second = page.input_value("#new-key-value")
        assert second.startswith("twk_") and "second partner" in page.inner_text("#new-key-for")
        # when the owner copies it, then "Done" closes it without a question
        page.click("#copy-key")
        page.wait_for_selector("#new-key[data-copied='true']", state="attached")
        assert page.evaluate("navigator.clipboard.readText()") == second
        page.click("#dismiss-key")
        page.locator("#new-key").wait_for(state="hidden")
        assert len(asked) == 3
    finally:
        for record in admin_api.get("/api/admin/keys").json()["keys"]:
            if record["key_id"] not in before:
                admin_api.delete(f"/api/admin/keys/{record['key_id']}")


def test_the_owner_opens_the_chart_without_making_a_key(
    local_stack, admin_secret, admin_api, partner_key, new_page
):
    # given keys exist (so the chart needs a sign-in) and the owner is in the panel
    page = new_page()
    sign_in(page, local_stack.api_url, admin_secret)

    def keys() -> list[str]:
        return [k["key_id"] for k in admin_api.get("/api/admin/keys").json()["keys"]]

    keys_before = keys()
    # when they press "Open chart"
    with page.expect_popup() as opened:
        page.click("#open-chart")
    chart = opened.value
    # then the chart opens on every market, with live updates, and no key was made
    shown = wait_chart_ready(chart)
    assert "/gate.html" not in chart.url
    all_symbols = admin_api.get("/api/admin/symbols").json()["count"]
    assert chart.locator("#symbol option").count() == all_symbols
    chart.wait_for_selector("#chart[data-connection='live']")
    assert int(shown["candleCount"]) > 0
    assert keys() == keys_before
    screenshot(chart, "chart-owner")
    # and the chart session holds no key and no admin secret, and is HttpOnly
    session = next(c for c in chart.context.cookies() if c["name"] == "twk_session")
    assert session["httpOnly"] and admin_secret not in session["value"] and "twk_" not in session["value"]
    # when the owner signs out of the panel, then the chart session ends too
    page.click("#logout")
    page.wait_for_selector("body[data-view='login']")
    chart.goto(local_stack.api_url + "/")
    chart.wait_for_url(lambda url: "/gate.html" in url)


def test_replacing_the_session_token_asks_first_and_checks_its_shape(local_stack, admin_secret, new_page):
    page = new_page()
    sign_in(page, local_stack.api_url, admin_secret)
    stored = stored_session_token(local_stack)
    message = page.locator("#token-message")
    asked: list[str] = []
    # given pasted text that is not a session token, then it is explained and nothing is stored
    for pasted, explanation in [
        ("session-token=abcdefghijklmnopqrstuvwxyz0123", 'Paste only the value after "session-token="'),
        ("abcdefghij;klmnopqrstuvwxyz", "no quotes, commas, semicolons"),
        ('"abcdefghijklmnopqrstuvwxyz"', "no quotes, commas, semicolons"),
        ("abcdefgh ijklmnopqrstu", "no spaces"),
    ]:
        page.fill("#session-token", pasted)
        page.click("#token-save")
        message.wait_for(state="visible")
        assert explanation in message.inner_text(), (pasted, message.inner_text())
    assert stored_session_token(local_stack) == stored
    # given a well-formed token, when the owner answers "no" to the question, then nothing is stored
    token = "tdx." + "Q2hlY2tlZF9zaGFwZQ" * 3 + "-_~+/="
    page.once("dialog", lambda dialog: (asked.append(dialog.message), dialog.dismiss()))
    page.fill("#session-token", token)
    page.click("#token-save")
    page.wait_for_selector("#token-message.warn")
    assert "Not saved" in message.inner_text() and len(asked) == 1
    assert "token" in asked[0].lower()
    assert stored_session_token(local_stack) == stored
    # when they answer "yes", then it is stored as sent
    page.once("dialog", lambda dialog: dialog.accept())
    page.fill("#session-token", token)
    page.click("#token-save")
    page.wait_for_selector("#token-message.ok")
    assert stored_session_token(local_stack) == token
    # and the API refuses the same bad shapes (a client other than this page)
    with httpx.Client(base_url=local_stack.api_url, timeout=10) as client:
        csrf = client.post("/api/admin/login", json={"secret": admin_secret}).json()["csrf_token"]
        r = client.put(
            "/api/admin/session-token",
            json={"token": "abcdefghij;klmnopqrst"},
            headers={"X-CSRF-Token": csrf},
        )
    assert r.status_code == 400 and r.json()["error"] == "invalid_session_token"
    assert stored_session_token(local_stack) == token


def test_token_line_and_upstream_pill_never_contradict(local_stack, admin_secret, new_page):
    # given no token is stored, and the collector is connected (the local stack's synthetic source)
    with stack_aws(local_stack):
        from tradowix_bot.server import aws

        ssm = aws.client("ssm")
        for p in ssm.describe_parameters()["Parameters"]:
            if p["Name"].endswith("/session-token"):
                ssm.delete_parameter(Name=p["Name"])
    page = new_page()
    sign_in(page, local_stack.api_url, admin_secret)
    page.wait_for_selector("#upstream-pill.pill-live")
    page.wait_for_selector("#token-section[data-set='false']")
    # then the panel does not also say the collector cannot reach Tradowix
    status = page.inner_text("#token-status")
    assert "cannot reach" not in status
    assert "synthetic" in status and "No token stored" in status
    screenshot(page, "admin-token-not-needed")


def test_health_shows_every_market_and_highlights_a_stale_one(local_stack, admin_secret, new_page):
    from tradowix_bot.server.store import CandleStore

    # given a market whose newest bar closed two hours ago (no collector writes it)
    old = int(time.time()) // 60 * 60 - 2 * 3600
    with stack_aws(local_stack) as runtime:
        store = CandleStore(runtime["candles_bucket"])
        store.write("STALE-OTC", [(old - 60 * i, 1.0, 1.1, 0.9, 1.05) for i in range(30)])
    try:
        page = new_page()
        sign_in(page, local_stack.api_url, admin_secret)
        page.wait_for_selector("#health-section[data-loaded]", state="attached")
        rows = page.locator("#health-body tr")
        # then every market has a row with its last closed bar's age and its link state
        symbols = page.eval_on_selector_all("#health-body tr", "rs => rs.map(r => r.dataset.symbol)")
        assert {"BTCUSD-OTC", "EURUSD-OTC", "STALE-OTC"} <= set(symbols)
        btc = page.locator("#health-body tr[data-symbol='BTCUSD-OTC']")
        assert btc.get_attribute("data-stale") == "false"
        assert int(btc.get_attribute("data-age")) < 150
        assert "streaming" in btc.inner_text()
        # and the stale market is highlighted, with its age in hours
        stale = page.locator("#health-body tr[data-symbol='STALE-OTC']")
        assert stale.get_attribute("data-stale") == "true" and "stale" in stale.get_attribute("class")
        assert "2 h ago" in stale.inner_text() and "not collected" in stale.inner_text()
        assert rows.count() == len(symbols)
        screenshot(page, "admin-health")
    finally:
        with stack_aws(local_stack) as runtime:
            CandleStore(runtime["candles_bucket"]).delete_days_before("STALE-OTC", "9999-12-31")
