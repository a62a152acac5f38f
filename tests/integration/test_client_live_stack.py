"""Given the session's local stack (its collector streams and fans out live bars) and a partner
key, when a bot subscribes with ChartApiClient, then a 5m subscription receives history, then
live bar updates; a wrong key is one AuthenticationError."""

from __future__ import annotations

import threading

import httpx
import pytest
from polling import eventually
from tradowix_bot.client.chart_client import AuthenticationError, ChartApiClient, LiveOptions

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def live_stack(local_stack):
    """The shared stack with a partner key (deleted afterwards): yields (stack, key)."""
    key_id, key = local_stack.create_key("sdk-live")
    eventually(  # the stack's key cache has seen that a key exists: a request without one is refused
        lambda: httpx.get(local_stack.api_url + "/api/symbols", timeout=10).status_code == 401,
        30,
        "the API closed once a key exists",
    )
    yield local_stack, key
    local_stack.cli("keys", "delete", key_id)
    local_stack.wait_open_mode()


def test_five_minute_subscription_gets_history_then_live_bars(live_stack):
    # given: a bot with a key, and the stack's collector live
    stack, key = live_stack
    client = ChartApiClient(stack.api_url, key)
    assert client.live_status()["live"] is True
    got: list[dict] = []
    stop = threading.Event()

    def on_msg(msg):
        got.append(msg)
        if msg.get("type") == "bar":
            stop.set()

    timer = threading.Timer(75, stop.set)  # a bound for a broken stack: bars come every second
    timer.start()
    try:
        # when: it subscribes to 5m bars
        client.subscribe_live_sync(on_msg, symbol="BTCUSD-OTC", timeframe=300, stop=stop)
    finally:
        timer.cancel()
    # then: status and 5m history first, then a live 5m bar
    kinds = [m.get("type") for m in got]
    assert kinds[:2] == ["status", "history"], kinds
    history = got[1]
    assert history["candles"] and all(c["time"] % 300 == 0 for c in history["candles"])
    bar = next((m for m in got if m["type"] == "bar"), None)
    assert bar, f"no live bar within 75 s: {kinds}"
    assert bar["symbol"] == "BTCUSD-OTC" and bar["timeframe"] == 300 and bar["candle"]["time"] % 300 == 0


def test_wrong_key_is_an_authentication_error(live_stack):
    # given: a key that does not exist
    stack, _ = live_stack
    wrong = "twk_" + "z" * 43
    stop = threading.Event()
    timer = threading.Timer(30, stop.set)  # a bound: without a refusal the call would stream on
    timer.start()
    try:
        # when: a bot subscribes with it, then: the HTTP status call's 401 is AuthenticationError
        client = ChartApiClient(stack.api_url, wrong)
        with pytest.raises(AuthenticationError):
            client.subscribe_live_sync(print, symbol="BTCUSD-OTC", timeframe=60, stop=stop)
        # and the WebSocket's own refusal (4401) is the same error, without the key in its text
        ws_only = ChartApiClient(stack.api_url, wrong)
        ws_only.ws_url = lambda: stack.ws_url + "/?api_key=" + wrong
        with pytest.raises(AuthenticationError) as info:
            ws_only.subscribe_live_sync(
                print, symbol="BTCUSD-OTC", timeframe=60, stop=stop, options=LiveOptions(backoff=0.1)
            )
        assert wrong not in str(info.value)
    finally:
        timer.cancel()
