"""Given a partner signed in to the chart (Chromium, against the local stack), then the chart
offers 1d bars, UTC or local time, a volume pane, a "go to real time" button, a watchlist,
indicators and the built-in strategy's signals (the same numbers as the Python strategy), the
bar-close countdown on the price axis, and it remembers the partner's settings."""

from __future__ import annotations

import contextlib
import datetime as dt
import json

import httpx
import pytest
from e2e_helpers import chart_state, poll, screenshot, sign_in_at_gate, wait_chart_ready, wait_until_at
from playwright.sync_api import Error as PlaywrightError

pytestmark = pytest.mark.e2e


def api_candles(stack, raw: str, **params) -> dict:
    r = httpx.get(stack.api_url + "/api/candles", params=params, headers={"X-Api-Key": raw}, timeout=10)
    assert r.status_code == 200, r.text
    return r.json()


def test_daily_bars_are_offered_and_match_the_api(local_stack, partner_key, new_page):
    _, raw = partner_key
    page = new_page()
    sign_in_at_gate(page, local_stack.api_url, raw)
    # when the partner picks 1d
    page.click("#timeframes button[data-tf='86400']")
    shown = wait_chart_ready(page, 86400)
    # then the chart shows the daily bars the API serves
    served = api_candles(
        local_stack, raw, symbol=shown["symbol"], timeframe=86400, end=int(shown["lastTime"]) + 1
    )
    assert int(shown["historyCount"]) == served["count"] >= 7
    assert page.get_attribute("#timeframes button[data-tf='86400']", "aria-pressed") == "true"


def test_times_in_utc_or_local_time_remembered(local_stack, partner_key, new_page):
    _, raw = partner_key
    page = new_page(timezone_id="Asia/Kolkata")  # UTC+05:30: every time differs
    sign_in_at_gate(page, local_stack.api_url, raw)
    kolkata = dt.timezone(dt.timedelta(hours=5, minutes=30))

    def legend_shows_the_last_bar_in(zone) -> bool:  # a new minute may arrive between the reads
        last = int(chart_state(page)["lastTime"])
        return page.inner_text("#legend .when") == dt.datetime.fromtimestamp(last, zone).strftime("%H:%M")

    # given the default, UTC, the legend shows the last bar's time in UTC
    poll(lambda: legend_shows_the_last_bar_in(dt.UTC), timeout=10)
    # when the partner picks local time, then times are shown in the browser's zone
    page.select_option("#timezone", "local")
    poll(lambda: legend_shows_the_last_bar_in(kolkata), timeout=10)
    assert chart_state(page)["tz"] == "local"
    # and the choice is remembered by this browser
    page.reload()
    wait_chart_ready(page)
    assert page.input_value("#timezone") == "local"
    poll(lambda: legend_shows_the_last_bar_in(kolkata), timeout=10)


def test_volume_pane_shows_tick_volume_when_bars_carry_it(local_stack, partner_key, new_page):
    _, raw = partner_key
    page = new_page()

    # given bars that carry "volume" (the shared contract: the tick count of the bar), as the
    # partner API serves them once the collector counts ticks; bars without it stay as they are
    def with_volume(route):
        answer = route.fetch()
        body = answer.json()
        for i, bar in enumerate(body["candles"]):
            bar.setdefault("volume", 20 + i % 40)
        route.fulfill(response=answer, body=json.dumps(body))

    sign_in_at_gate(page, local_stack.api_url, raw)
    # without volume on the bars there is no empty pane, and the legend says "n/a"
    if not any("volume" in c for c in api_candles(local_stack, raw, symbol="BTCUSD-OTC", limit=5)["candles"]):
        assert chart_state(page)["panes"] == "1"
        assert "Vol n/a" in page.inner_text("#legend")
    page.route("**/api/candles?*", with_volume)
    # (no live feed in this test: its bars would come without the volume added here)
    page.route("**/api/live/status", lambda route: route.fulfill(json={"live": False, "ws_url": None}))
    page.goto(local_stack.api_url + "/?symbol=BTCUSD-OTC&tf=60")
    shown = wait_chart_ready(page, 60)
    # then a volume pane under the price shows one bar per candle, and the legend its value
    assert shown["panes"] == "2" and "volume" in shown["indicators"].split(",")
    assert shown["volumeBars"] == shown["historyCount"] == shown["candleCount"]
    assert page.locator("#legend .vol b").inner_text().replace(",", "").isdigit()
    screenshot(page, "chart-volume")


def test_go_to_real_time_after_scrolling_back(local_stack, partner_key, new_page):
    _, raw = partner_key
    page = new_page()
    sign_in_at_gate(page, local_stack.api_url, raw)
    assert page.locator("#to-realtime").is_hidden()
    # when the partner drags the chart to the right (back in time)
    box = page.locator("#chart").bounding_box()
    y = box["y"] + box["height"] / 3
    page.mouse.move(box["x"] + 100, y)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] - 100, y, steps=8)
    page.mouse.up()
    # then "go to real time" appears, and brings the newest bar back into view
    page.locator("#to-realtime").wait_for(state="visible")
    assert chart_state(page)["scrolledBack"] == "true"
    screenshot(page, "chart-scrolled-back")
    page.click("#to-realtime")
    page.locator("#to-realtime").wait_for(state="hidden")
    assert chart_state(page)["scrolledBack"] == "false"


def test_watchlist_lists_the_keys_symbols_with_price_and_change(local_stack, admin_api, new_page):
    r = admin_api.post("/api/admin/keys", json={"name": "watcher", "symbols": ["EURUSD-OTC", "ETHUSD-OTC"]})
    key_id, raw = r.json()["record"]["key_id"], r.json()["key"]
    try:
        page = new_page()
        sign_in_at_gate(page, local_stack.api_url, raw)
        page.wait_for_selector("#watchlist[data-loaded]", state="attached")
        # then every symbol the key may read is listed (and no other), with price and day change
        items = page.locator("#watchlist-items button")
        assert sorted(items.evaluate_all("bs => bs.map(b => b.dataset.symbol)")) == [
            "ETHUSD-OTC",
            "EURUSD-OTC",
        ]
        eth = page.locator("#watchlist-items button[data-symbol='ETHUSD-OTC']")
        days = api_candles(local_stack, raw, symbol="ETHUSD-OTC", timeframe=86400, limit=2)["candles"]
        price, change = float(eth.get_attribute("data-price")), float(eth.get_attribute("data-change"))
        assert abs(price - days[-1]["close"]) / days[-1]["close"] < 0.01  # live ticks may move it a little
        expected = (days[-1]["close"] - days[0]["close"]) / days[0]["close"] * 100
        assert abs(change - expected) < 1.0
        assert "%" in eth.inner_text()
        screenshot(page, "chart-watchlist")
        # when the partner clicks a symbol, then the chart switches to it
        eth.click()
        assert poll(lambda: chart_state(page)["symbol"] == "ETHUSD-OTC", timeout=5)
        wait_chart_ready(page)
        assert eth.get_attribute("aria-current") == "true"
        # and on a phone the watchlist opens from the top bar
        phone = new_page(390, 844)
        sign_in_at_gate(phone, local_stack.api_url, raw)
        assert phone.locator("#watchlist").is_hidden()
        phone.click("#watchlist-toggle")
        phone.locator("#watchlist-items button[data-symbol='EURUSD-OTC']").click()
        assert poll(lambda: chart_state(phone)["symbol"] == "EURUSD-OTC", timeout=5)
        assert phone.locator("#watchlist").is_hidden()
    finally:
        admin_api.delete(f"/api/admin/keys/{key_id}")


def test_indicators_and_signals_match_the_strategy_and_are_remembered(local_stack, partner_key, new_page):
    from talipp.indicators import BB, EMA, RSI, SMA
    from tradowix_bot.strategy import builtin as strategy

    _, raw = partner_key
    page = new_page()
    sign_in_at_gate(page, local_stack.api_url, raw)
    page.goto(local_stack.api_url + "/?symbol=BTCUSD-OTC&tf=300")  # ~2,000 bars: quick to compare
    wait_chart_ready(page, 300)
    # when the partner turns on SMA, EMA, Bollinger, RSI and the strategy's signals
    page.click("#indicators-button")
    for box in ("#ind-sma", "#ind-ema", "#ind-bb", "#ind-rsi", "#ind-signals"):
        page.check(box)
    page.fill("#ind-sma-period", "30")
    page.dispatch_event("#ind-sma-period", "change")
    page.keyboard.press("Escape")
    state = chart_state(page)
    # then they are drawn, RSI in a pane of its own
    assert {"sma", "ema", "bbUpper", "bbMiddle", "bbLower", "rsi"} <= set(state["indicators"].split(","))
    assert int(state["panes"]) == 2 + ("volume" in state["indicators"])
    screenshot(page, "chart-indicators")
    # and their values are talipp's (the library the strategy uses) on the same closes
    bars = page.evaluate("closedCandles().map(c => [c.time, c.open, c.high, c.low, c.close])")
    closes = [b[4] for b in bars]
    tail = 300  # compared on the newest 300 bars (computed over all of them): quick to transfer
    drawn = page.evaluate(
        """tail => { const closes = closedCandles().map(c => c.close); const t = (a) => a.slice(-tail);
        return {sma: t(TradowixIndicators.sma(closes, 30)), ema: t(TradowixIndicators.ema(closes, 50)),
        rsi: t(TradowixIndicators.rsi(closes)), bb: t(TradowixIndicators.bollinger(closes))}; }""",
        tail,
    )
    expected = {
        "sma": list(SMA(30, input_values=closes))[-tail:],
        "ema": list(EMA(50, input_values=closes))[-tail:],
        "rsi": list(RSI(14, input_values=closes))[-tail:],
    }
    for name, values in expected.items():
        assert len(drawn[name]) == len(values)
        for got, want in zip(drawn[name], values, strict=True):
            assert (got is None and want is None) or abs(got - want) <= 1e-6 * max(1.0, abs(want)), name
    for got, want in zip(drawn["bb"], list(BB(20, 2.0, input_values=closes))[-tail:], strict=True):
        assert (got is None and want is None) or abs(got["upper"] - want.ub) <= 1e-6 * abs(want.ub)
    # and the markers are the Python strategy's signals at the closed bars, with their confidence
    python = [
        s for s in strategy.signals([tuple(b) for b in bars]) if s and s.direction and s.confidence >= 0.3
    ]
    markers = page.evaluate("state.markers.markers()")
    assert [(m["time"], m["shape"]) for m in markers] == [
        (s.time, "arrowUp" if s.direction == "CALL" else "arrowDown") for s in python
    ]
    assert int(chart_state(page)["signalMarkers"]) == len(python) > 0
    shown = page.evaluate("[...state.signalByTime.values()].map(s => [s.time, s.direction, s.confidence])")
    assert [(t, d, round(c, 6)) for t, d, c in shown] == [(s.time, s.direction, s.confidence) for s in python]
    # each one's confidence is told: the newest as text, any other in the legend on its bar
    newest = python[-1]
    assert markers[-1]["text"] == f"{newest.direction} {round(newest.confidence * 100)}%"
    shown_from, shown_to = page.evaluate("(r => [r.from, r.to])(state.chart.timeScale().getVisibleRange())")
    older = next(s for s in reversed(python[:-1]) if shown_from <= s.time <= shown_to)
    x = page.evaluate(f"state.chart.timeScale().timeToCoordinate({older.time})")
    box = page.locator("#chart").bounding_box()
    page.mouse.move(box["x"] + x, box["y"] + box["height"] / 3)
    told = f"Signal at this bar: {older.direction} {round(older.confidence * 100)}%"
    poll(lambda: told in page.inner_text("#legend"), timeout=10)  # the crosshair's event comes after the move
    # and the settings are remembered by this browser
    page.reload()
    again = wait_chart_ready(page)
    assert again["indicators"] == state["indicators"]
    assert page.is_checked("#ind-signals") and page.input_value("#ind-sma-period") == "30"


def test_countdown_sits_on_the_price_axis_by_the_last_price(local_stack, partner_key, new_page):
    _, raw = partner_key
    page = new_page()
    sign_in_at_gate(page, local_stack.api_url, raw)
    page.wait_for_selector("#chart[data-connection='live']")
    label = page.locator("#axis-countdown")
    label.wait_for(state="visible")
    geometry = page.evaluate(
        """() => {
        const last = state.candles[state.candles.length - 1];
        const box = document.getElementById('chart').getBoundingClientRect();
        return {y: box.top + state.series.priceToCoordinate(last.close),
                scaleLeft: box.right - state.chart.priceScale('right').width(), right: box.right};
    }"""
    )
    box = label.bounding_box()
    # then it is in the price scale's column, right under the last price's label
    assert abs(box["x"] - geometry["scaleLeft"]) <= 1 and box["x"] + box["width"] <= geometry["right"] + 1
    assert 0 <= box["y"] - geometry["y"] <= 12
    # and it shows the same time as the countdown in the top bar, counting down
    assert poll(lambda: label.inner_text() == page.inner_text("#countdown-value"), timeout=2)
    assert label.inner_text().count(":") >= 1


def test_signing_out_clears_the_cookie(local_stack, partner_key, new_page):
    _, raw = partner_key
    page = new_page()
    sign_in_at_gate(page, local_stack.api_url, raw)
    assert any(c["name"] == "twk_session" for c in page.context.cookies())
    # when the partner signs out
    page.click("#sign-out")
    page.wait_for_url(lambda url: "/gate.html" in url)
    # then the gate says so, the HttpOnly cookie is gone, and the chart asks for a key again
    assert "signed out" in page.inner_text("#gate-reason")
    assert not any(c["name"] == "twk_session" for c in page.context.cookies())
    page.goto(local_stack.api_url + "/")
    page.wait_for_url(lambda url: "/gate.html" in url)
    # and signing out from the gate itself works too
    sign_in_at_gate(page, local_stack.api_url, raw)
    page.goto(local_stack.api_url + "/gate.html")
    page.locator("#gate-sign-out").click()
    page.locator("#gate-reason").wait_for(state="visible")
    assert not any(c["name"] == "twk_session" for c in page.context.cookies())


def test_a_disabled_key_is_told_so_on_the_gate(local_stack, admin_api, partner_key, new_page):
    key_id, raw = partner_key
    page = new_page()
    sign_in_at_gate(page, local_stack.api_url, raw)
    # given the owner disables the key
    assert admin_api.post(f"/api/admin/keys/{key_id}/disable").status_code == 200

    def refused() -> bool:
        r = httpx.get(local_stack.api_url + "/api/symbols", headers={"X-Api-Key": raw}, timeout=10)
        return r.status_code == 401

    assert poll(refused, timeout=10)  # the key cache bound of the test stack is 2 s
    # when the partner opens the chart again (the chart still open may be on its way to the gate
    # already, which aborts this navigation: either way the partner ends on the gate)
    with contextlib.suppress(PlaywrightError):
        page.goto(local_stack.api_url + "/")
    wait_until_at(page, "/gate.html")
    # then the gate says the key was disabled, before the partner types anything
    reason = page.locator("#gate-reason")
    reason.wait_for(state="visible")
    assert "disabled by the owner" in reason.inner_text()
