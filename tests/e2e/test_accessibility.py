"""Given the gate, the chart and the admin panel in Chromium at 1440x900 and 390x844, in the
dark and the light theme, when axe-core (from npm) checks them, then it finds no serious or
critical violation; and the theme follows the system's colour scheme."""

from __future__ import annotations

import pytest
from e2e_helpers import VIEWPORTS, screenshot, serious_axe_violations, sign_in_at_gate
from test_admin_panel import sign_in as admin_sign_in

pytestmark = pytest.mark.e2e


def check_both_themes(page, name: str, viewport: str, found: dict, full_page: bool = False) -> None:
    """axe in the dark theme, then in the light one (the page switches with the system setting)."""
    for scheme in ("dark", "light"):
        page.emulate_media(color_scheme=scheme)
        page.wait_for_timeout(50)  # one frame for the chart to repaint its canvas
        found[f"{name}-{scheme}"] = serious_axe_violations(page)
        screenshot(page, f"{name}-{viewport}-{scheme}", full_page=full_page)


@pytest.mark.parametrize("viewport", list(VIEWPORTS))
def test_pages_have_no_serious_accessibility_violations(
    local_stack, admin_secret, partner_key, new_page, viewport
):
    _, raw = partner_key
    width, height = VIEWPORTS[viewport]
    page = new_page(width, height)
    found: dict[str, list] = {}
    # given the gate
    page.goto(local_stack.api_url + "/gate.html")
    page.wait_for_selector("#api-key:focus")
    check_both_themes(page, "gate", viewport, found)
    # and the chart, signed in and live
    sign_in_at_gate(page, local_stack.api_url, raw)
    page.wait_for_selector("#chart[data-connection='live']")
    check_both_themes(page, "chart", viewport, found)
    # and the admin panel, signed in, its health table filled
    admin = new_page(width, height)
    admin_sign_in(admin, local_stack.api_url, admin_secret)
    admin.wait_for_selector("#health-section[data-loaded]", state="attached")
    check_both_themes(admin, "admin", viewport, found, full_page=True)
    # then axe finds nothing serious or critical on any of them, in either theme
    assert {name: v for name, v in found.items() if v} == {}
    assert len(found) == 6


def test_the_theme_follows_the_system_colour_scheme(local_stack, partner_key, new_page):
    _, raw = partner_key
    page = new_page()
    sign_in_at_gate(page, local_stack.api_url, raw)
    seen = {}
    for scheme in ("dark", "light", "dark"):
        # when the system's colour scheme changes, even while the page is open
        page.emulate_media(color_scheme=scheme)
        page.wait_for_timeout(50)
        # then the page and the chart's own canvas follow it
        seen[scheme] = (
            page.eval_on_selector("body", "e => getComputedStyle(e).backgroundColor"),
            page.evaluate("state.chart.options().layout.background.color"),
        )
    assert seen["dark"] == ("rgb(11, 15, 23)", "#0b0f17")
    assert seen["light"] == ("rgb(244, 246, 250)", "#f4f6fa")
