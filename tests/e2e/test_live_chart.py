"""Given a partner signed in at the gate and the chart open on the session's stack (its collector
fans live bars out over the WebSocket gateway), when live bars arrive, then the chart's last
candle follows them and the page says it is live."""

from __future__ import annotations

import pytest
from e2e_helpers import chart_state, poll, screenshot, sign_in_at_gate, wait_chart_ready

pytestmark = pytest.mark.e2e


def test_live_bar_update_changes_the_last_candle(local_stack, partner_key, new_page):
    # given: the chart of BTCUSD-OTC 1m, signed in with a key
    _, raw = partner_key
    page = new_page()
    sign_in_at_gate(page, local_stack.api_url, raw)
    page.goto(local_stack.api_url + "/?symbol=BTCUSD-OTC&tf=60")
    before = wait_chart_ready(page, 60)

    def connected():
        state = chart_state(page)
        assert state.get("connection") == "live", (
            f"connection={state.get('connection')!r}, last close code={state.get('wsCloseCode')!r}, "
            f"connection text={page.inner_text('#connection')!r} (the browser connects to ws_url "
            "from /api/live/status, which carries session=<signed cookie token> for a gate sign-in)"
        )
        return state

    poll(connected, timeout=20)

    # when: a live bar arrives, then: the last candle changes (the forming bar moves or a new one starts)
    def changed():
        now = chart_state(page)
        moved = now["lastTime"] != before["lastTime"] or now["lastClose"] != before["lastClose"]
        return now if int(now["liveUpdates"]) > 0 and moved else None

    after = poll(changed, timeout=30)
    assert int(after["lastTime"]) >= int(before["lastTime"])
    assert page.inner_text("#connection").startswith("live")
    screenshot(page, "chart-live")
