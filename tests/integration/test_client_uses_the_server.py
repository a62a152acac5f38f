"""Given the partner client and a real local stack (issue 13 item 4), when it polls, reads large
answers or calls a stack that is not there, then it uses what the server offers: a repeated poll
is answered 304 and still gives the bars, large answers come gzip-compressed, and a stack that is
not there is a network failure, not an HTTP status."""

from __future__ import annotations

import httpx
import pytest
from tradowix_bot.client.chart_client import ChartApiClient, NetworkError

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def key(local_stack):
    key_id, raw = local_stack.create_key("client-conditional")
    yield raw
    local_stack.delete_key(key_id, raw)


def recorded(client: ChartApiClient) -> list[httpx.Response]:
    """The raw HTTP answers the client receives (status, headers), in order."""
    seen: list[httpx.Response] = []
    client._http.event_hooks["response"].append(seen.append)
    return seen


def test_a_repeated_poll_is_answered_304_and_still_gives_the_bars(local_stack, key):
    with ChartApiClient(local_stack.api_url, key) as client:
        seen = recorded(client)
        # given a range of closed bars (the forming bar would change the answer every second)
        newest = client.candles("BTCUSD-OTC", timeframe=60, limit=3)["candles"][0]["time"]
        first = client.candles("BTCUSD-OTC", timeframe=60, start=newest - 3600, end=newest)
        # when the bot polls the same query again
        again = client.candles("BTCUSD-OTC", timeframe=60, start=newest - 3600, end=newest)
    # then the server answered 304 (no body) and the bot still got every bar
    assert [r.status_code for r in seen[1:]] == [200, 304]
    assert seen[2].request.headers["if-none-match"] == seen[1].headers["etag"]
    assert again["candles"] == first["candles"] and again["count"] == 60
    assert again["timing"]["server_time"] >= first["timing"]["server_time"]


def test_a_large_answer_comes_gzip_compressed(local_stack, key):
    with ChartApiClient(local_stack.api_url, key) as client:
        seen = recorded(client)
        data = client.candles("BTCUSD-OTC", timeframe=60)
    assert data["count"] > 1440
    assert seen[-1].headers.get("content-encoding") == "gzip"
    assert int(seen[-1].headers.get("content-length", 0)) < len(seen[-1].content) / 3


def test_a_stack_that_is_not_there_is_a_network_failure_without_a_status():
    # given the stack's URL on a port where nothing listens
    with ChartApiClient("http://127.0.0.1:9", None, max_retries=0) as client:
        with pytest.raises(NetworkError) as info:
            client.symbols()
    assert info.value.status is None and "cannot reach http://127.0.0.1:9" in info.value.message
