"""Live updates in the browser. NEEDS THE WEBSOCKET SERVER (issue 4) on the stack's --ws-port:
without it this test fails, saying so."""

from __future__ import annotations

import pytest
from e2e_helpers import chart_state, poll, screenshot, sign_in_at_gate, wait_chart_ready

pytestmark = pytest.mark.e2e


def test_live_bar_update_changes_last_candle_needs_ws_server(local_stack, partner_key, new_page):
    _, raw = partner_key
    page = new_page()
    sign_in_at_gate(page, local_stack.api_url, raw)
    page.goto(local_stack.api_url + "/?symbol=BTCUSD-OTC&tf=60")
    before = wait_chart_ready(page, 60)

    def settled():
        # live, or told there is no WebSocket at all (ws_url null): no point waiting then
        return chart_state(page).get("connection") == "live" or "no live feed" in page.inner_text(
            "#connection"
        )

    poll(settled, timeout=20)
    if chart_state(page).get("connection") != "live":
        state = chart_state(page)
        pytest.fail(
            "no WebSocket server answered the chart (issue 4's server on --ws-port): "
            f"connection={state.get('connection')!r}, last close code={state.get('wsCloseCode')!r}, "
            f"connection text={page.inner_text('#connection')!r}. The browser connects to ws_url from "
            "/api/live/status, which carries session=<signed cookie token> for a gate sign-in."
        )

    # when a live bar arrives, then the last candle changes (the forming bar moves or a new one starts)
    def changed():
        now = chart_state(page)
        moved = now["lastTime"] != before["lastTime"] or now["lastClose"] != before["lastClose"]
        return now if int(now["liveUpdates"]) > 0 and moved else None

    after = poll(changed, timeout=30)
    assert after, f"no live bar changed the last candle within 30 s: {chart_state(page)}"
    assert int(after["lastTime"]) >= int(before["lastTime"])
    assert page.inner_text("#connection").startswith("live")
    screenshot(page, "chart-live")
