"""The chart's live client against a scripted WebSocket peer speaking the contract's protocol.

This checks the browser side alone (what the page does with status / bar / timing / error
messages, and how it reconnects); the real server is exercised by test_live_chart.py. The
page is pointed at the peer by answering its /api/live/status call in the browser.
"""

from __future__ import annotations

import time

import pytest
from e2e_helpers import (
    ScriptedPeer,
    chart_state,
    free_port,
    point_live_status_at,
    poll,
    screenshot,
    wait_chart_ready,
)

pytestmark = pytest.mark.e2e


def test_chart_follows_live_bars_and_reconnects(local_stack, partner_key, new_page):
    _, raw = partner_key
    peer = ScriptedPeer(free_port()).start()
    page = new_page()
    point_live_status_at(page, peer)
    page.set_extra_http_headers({"X-Api-Key": raw})
    try:
        page.goto(local_stack.api_url + "/?symbol=BTCUSD-OTC&tf=60")
        before = wait_chart_ready(page, 60)
        # when the page connects, then it says live and subscribes to what it shows, once
        page.wait_for_selector("#chart[data-connection='live']")
        assert poll(lambda: peer.subscribes(), timeout=5)
        time.sleep(0.5)
        assert peer.subscribes() == [{"type": "subscribe", "symbol": "BTCUSD-OTC", "timeframe": 60}]
        count, last, price = int(before["candleCount"]), int(before["lastTime"]), float(before["lastClose"])
        moved, closed, later = round(price + 3.25, 2), round(price + 4.5, 2), round(price + 5.75, 2)
        # a forming bar moves the last candle
        bar = {"time": last, "open": price, "high": later + 2, "low": price - 2, "close": moved}
        peer.send({"type": "bar", "symbol": "BTCUSD-OTC", "timeframe": 60, "candle": bar, "closed": False})
        # (compared as numbers: JavaScript writes 1235.0 as "1235")
        assert poll(lambda: float(chart_state(page)["lastClose"]) == moved, timeout=5)
        assert int(chart_state(page)["candleCount"]) == count
        # its closing update stays, and the next bar is added after it
        peer.send(
            {
                "type": "bar",
                "symbol": "BTCUSD-OTC",
                "timeframe": 60,
                "candle": {**bar, "close": closed},
                "closed": True,
            }
        )
        nxt = {"time": last + 60, "open": closed, "high": later + 1, "low": closed - 1, "close": later}
        peer.send({"type": "bar", "symbol": "BTCUSD-OTC", "timeframe": 60, "candle": nxt, "closed": False})
        state = poll(lambda: (s := chart_state(page))["lastTime"] == str(last + 60) and s, timeout=5)
        assert state and int(state["candleCount"]) == count + 1 and float(state["lastClose"]) == later
        # bars of another symbol or timeframe are ignored
        peer.send({"type": "bar", "symbol": "ETHUSD-OTC", "timeframe": 60, "candle": {**nxt, "close": 9.5}})
        peer.send({"type": "bar", "symbol": "BTCUSD-OTC", "timeframe": 300, "candle": {**nxt, "close": 9.5}})
        # timing drives the countdown
        now = time.time()
        peer.send({"type": "timing", "symbol": "BTCUSD-OTC", "timeframe": 60,
                   "timing": {"server_time": now, "bar_close": now + 42, "timeframe": 60}})  # fmt: skip
        assert poll(
            lambda: int(page.get_attribute("#countdown", "data-seconds-left")) in (40, 41, 42), timeout=5
        )
        assert float(chart_state(page)["lastClose"]) == later
        # an error message is shown, and the connection stays
        peer.send(
            {"type": "error", "error": "symbol_forbidden", "message": "this API key cannot access XAUUSD-OTC"}
        )
        page.locator("#toast").wait_for(state="visible")
        assert "XAUUSD-OTC" in page.inner_text("#toast")
        assert chart_state(page)["connection"] == "live"
        screenshot(page, "chart-live-client")

        # when the server goes away, then the page says so and keeps trying
        peer.stop()
        page.wait_for_selector("#chart[data-connection='reconnecting']")
        assert "reconnecting" in page.inner_text("#connection")
        # when it is back, then the page reconnects by itself and subscribes again
        subscribed_before = len(peer.subscribes())
        peer.start()
        page.wait_for_selector("#chart[data-connection='live']", timeout=20_000)
        assert poll(lambda: len(peer.subscribes()) > subscribed_before, timeout=5)

        # switching timeframe unsubscribes the old one and subscribes the new one
        page.click("#timeframes button[data-tf='300']")
        wait_chart_ready(page, 300)
        assert poll(
            lambda: peer.subscribes()[-1] == {"type": "subscribe", "symbol": "BTCUSD-OTC", "timeframe": 300},
            timeout=5,
        )
        assert {"type": "unsubscribe", "symbol": "BTCUSD-OTC", "timeframe": 60} in peer.received
    finally:
        peer.stop()
