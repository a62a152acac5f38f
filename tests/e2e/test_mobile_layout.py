"""Given a partner on a phone (390x844, and 844x390 held sideways), then the legend never runs
under the price scale, the countdown keeps its label, and the top bar fits in landscape."""

from __future__ import annotations

import pytest
from e2e_helpers import screenshot, sign_in_at_gate

pytestmark = pytest.mark.e2e


def test_phone_portrait_legend_clear_of_the_price_scale_and_countdown_labelled(
    local_stack, partner_key, new_page
):
    _, raw = partner_key
    page = new_page(390, 844)
    sign_in_at_gate(page, local_stack.api_url, raw)
    page.wait_for_selector("#chart[data-connection='live']")
    # given the longest legend: a bar with every value, and indicators on (set in the
    # indicators panel, which opens inside the screen)
    page.click("#indicators-button")
    panel = page.locator("#indicators-panel").bounding_box()
    assert panel["x"] >= 0 and panel["x"] + panel["width"] <= 390, panel
    assert page.locator("#ind-signals-min").is_visible()
    page.check("#ind-sma")
    page.check("#ind-signals")
    page.keyboard.press("Escape")
    geometry = page.evaluate(
        """() => {
        const chart = document.getElementById('chart').getBoundingClientRect();
        return {legendRight: document.getElementById('legend').getBoundingClientRect().right,
                scaleLeft: chart.right - state.chart.priceScale('right').width()};
    }"""
    )
    # then the legend ends before the price scale begins
    assert geometry["legendRight"] <= geometry["scaleLeft"], geometry
    # and the countdown keeps its label
    label = page.locator("#countdown small")
    assert label.is_visible() and label.inner_text() == "closes in"
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    screenshot(page, "chart-phone-portrait")


def test_phone_landscape_top_bar_fits_on_one_row(local_stack, partner_key, new_page):
    _, raw = partner_key
    page = new_page(844, 390)
    sign_in_at_gate(page, local_stack.api_url, raw)
    page.wait_for_selector("#chart[data-connection='live']")
    top = page.locator(".topbar").bounding_box()
    chart = page.locator("#chart").bounding_box()
    # then the top bar is one short row, nothing spills sideways, and the chart keeps the height
    assert top["height"] <= 56, top
    assert page.evaluate("document.documentElement.scrollWidth") <= 844
    for control in ("#symbol", "#timeframes", "#indicators-button", "#connection", "#countdown"):
        box = page.locator(control).bounding_box()
        assert page.locator(control).is_visible() and box["x"] + box["width"] <= 844, control
        assert box["y"] + box["height"] <= top["y"] + top["height"], control
    # every timeframe button is in view, none hidden in a scrolled strip
    strip = page.eval_on_selector("#timeframes", "s => [s.scrollWidth, s.clientWidth]")
    assert strip[0] <= strip[1], f"the timeframes need {strip[0]} px, they have {strip[1]}"
    last = page.locator("#timeframes button[data-tf='86400']").bounding_box()
    assert last["x"] + last["width"] <= page.locator("#countdown").bounding_box()["x"]
    assert chart["height"] >= 250
    screenshot(page, "chart-phone-landscape")
