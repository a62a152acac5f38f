"""Given a server faked with httpx.MockTransport (each test says what it answers), when
ChartApiClient makes the spec's calls, then the key is sent, answers are returned, each error
status is its own typed error with the server's message, retries are transparent, and defaults
come from the environment."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
from tradowix_bot.client import chart_client
from tradowix_bot.client.chart_client import (
    AsyncChartApiClient,
    AuthenticationError,
    BadRequestError,
    ChartApiClient,
    ChartApiError,
    ChartTimeoutError,
    NotFoundError,
    RateLimitedError,
    SymbolForbiddenError,
    UnavailableError,
)

KEY = "twk_" + "k" * 40
BARS = [{"time": 1710000000 + 60 * i, "open": 1.1, "high": 1.2, "low": 1.0, "close": 1.15} for i in range(3)]


class FakeServer:
    """Records requests; answers from a list of (status, body, headers), the last one repeating."""

    def __init__(self, *answers):
        self.answers = list(answers) or [(200, {"ok": True}, {})]
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        status, body, headers = self.answers[min(len(self.requests), len(self.answers)) - 1]
        return httpx.Response(status, json=body, headers=headers)


@pytest.fixture(autouse=True)
def no_sleep(monkeypatch):
    """Retries wait for real in production; here we record the waits instead."""
    waits: list[float] = []
    monkeypatch.setattr(chart_client.time, "sleep", waits.append)

    async def fake_async_sleep(seconds):
        waits.append(seconds)

    monkeypatch.setattr(chart_client.asyncio, "sleep", fake_async_sleep)
    return waits


def make(server, **kw):
    return ChartApiClient("https://example-host", KEY, transport=httpx.MockTransport(server), **kw)


def test_spec_calls_send_the_key_and_return_the_answer():
    # given a server that verifies the key and serves candles
    server = FakeServer(
        (200, {"ok": True, "key_id": "key_1", "name": "p", "all_symbols": True, "symbols": []}, {}),
        (200, {"symbol": "BTCUSD-OTC", "timeframe": 60, "count": 3, "candles": BARS}, {}),
        (200, {"symbol": "BTCUSD-OTC", "timeframe": 300, "count": 1, "candles": BARS[:1]}, {}),
    )
    client = make(server)
    # when the partner code of the spec runs
    assert client.verify()["ok"] is True
    data = client.candles("BTCUSD-OTC", timeframe=60)
    data_5m = client.candles("BTCUSD-OTC", timeframe=300)
    # then the key went in the header (and the verify body), and the queries are the spec's
    verify, c1, c5 = server.requests
    assert verify.method == "POST" and verify.url.path == "/api/auth/verify"
    assert json.loads(verify.content) == {"api_key": KEY}
    assert all(r.headers["x-api-key"] == KEY for r in server.requests)
    assert dict(c1.url.params) == {"symbol": "BTCUSD-OTC", "timeframe": "60"}
    assert dict(c5.url.params) == {"symbol": "BTCUSD-OTC", "timeframe": "300"}
    assert [b["close"] for b in data["candles"]] == [1.15] * 3 and data_5m["count"] == 1


def test_extension_calls_hit_their_endpoints():
    server = FakeServer((200, {"x": 1}, {}))
    client = make(server)
    client.symbols()
    client.timing("EURUSD-OTC", 300)
    client.live_status()
    client.docs()
    client.candles("EURUSD-OTC", 120, limit=10, start=100, end=200)
    paths = [(r.url.path, dict(r.url.params)) for r in server.requests]
    assert paths == [
        ("/api/symbols", {}),
        ("/api/timing", {"symbol": "EURUSD-OTC", "timeframe": "300"}),
        ("/api/live/status", {}),
        ("/api/docs", {}),
        (
            "/api/candles",
            {"symbol": "EURUSD-OTC", "timeframe": "120", "limit": "10", "start": "100", "end": "200"},
        ),
    ]


@pytest.mark.parametrize(
    "status, code, error_type",
    [
        (400, "invalid_timeframe", BadRequestError),
        (401, "invalid_key", AuthenticationError),
        (403, "symbol_forbidden", SymbolForbiddenError),
        (404, "no_data", NotFoundError),
        (429, "rate_limited", RateLimitedError),
        (503, "unavailable", UnavailableError),
    ],
)
def test_each_error_status_maps_to_its_type_with_the_servers_message(status, code, error_type, no_sleep):
    # given a server that always answers this error
    server = FakeServer(
        (status, {"error": code, "message": f"the server says {status}"}, {"Retry-After": "2"})
    )
    client = make(server, max_retries=2)
    # when the partner asks for candles, then the typed error carries the server's code and message
    with pytest.raises(error_type) as info:
        client.candles("BTCUSD-OTC")
    assert isinstance(info.value, ChartApiError)
    assert info.value.status == status and info.value.error == code
    assert info.value.message == f"the server says {status}"
    # and only 429/503 were retried (honouring Retry-After: 2 s)
    if status in (429, 503):
        assert len(server.requests) == 3 and no_sleep == [2.0, 2.0]
        assert info.value.retry_after == 2.0
    else:
        assert len(server.requests) == 1 and no_sleep == []


def test_rate_limit_then_success_is_transparent(no_sleep):
    server = FakeServer(
        (429, {"error": "rate_limited", "message": "slow down"}, {"Retry-After": "1"}),
        (503, {"error": "unavailable", "message": "storage"}, {}),
        (200, {"count": 3, "candles": BARS}, {}),
    )
    data = make(server).candles("BTCUSD-OTC", limit=3)
    assert data["count"] == 3 and len(server.requests) == 3
    # the 429 waited its Retry-After; the 503 (2nd retry) without one backed off with jitter (<= 2 x 0.5 s)
    assert no_sleep[0] == 1.0 and 0 <= no_sleep[1] <= 1.0


def test_retry_after_longer_than_the_client_will_wait_raises_at_once(no_sleep):
    server = FakeServer(
        (429, {"error": "rate_limited", "message": "come back in 10 min"}, {"Retry-After": "600"})
    )
    with pytest.raises(RateLimitedError) as info:
        make(server, max_retry_wait=60).symbols()
    assert info.value.retry_after == 600 and len(server.requests) == 1 and no_sleep == []


def test_non_json_error_body_still_gives_a_clear_message():
    def server(request):
        return httpx.Response(502, text="<html>Bad Gateway</html>")

    client = ChartApiClient("https://h", KEY, transport=httpx.MockTransport(server), max_retries=0)
    with pytest.raises(UnavailableError, match="HTTP 502 Bad Gateway: <html>Bad Gateway</html>"):
        client.docs()


def test_timeouts_are_retried_then_reported_as_timeout(no_sleep):
    calls = []

    def server(request):
        calls.append(request)
        raise httpx.ReadTimeout("slow", request=request)

    client = ChartApiClient("https://h", KEY, transport=httpx.MockTransport(server), max_retries=2, timeout=3)
    with pytest.raises(ChartTimeoutError, match="no answer within 3"):
        client.candles("BTCUSD-OTC")
    assert len(calls) == 3


def test_url_and_key_default_to_the_environment(monkeypatch):
    monkeypatch.setenv("TRADOWIX_CHART_URL", "https://env-host/")
    monkeypatch.setenv("TRADOWIX_CHART_API_KEY", KEY)
    client = ChartApiClient()
    assert client.base_url == "https://env-host" and client.api_key == KEY
    assert KEY not in repr(client)


def test_missing_url_is_a_clear_error(monkeypatch):
    monkeypatch.delenv("TRADOWIX_CHART_URL", raising=False)
    with pytest.raises(ValueError, match="TRADOWIX_CHART_URL"):
        ChartApiClient()


def test_async_twin_has_the_same_calls_and_errors(no_sleep):
    server = FakeServer(
        (200, {"count": 3, "candles": BARS}, {}),
        (403, {"error": "symbol_forbidden", "message": "not for this key"}, {}),
    )

    async def main():
        async with AsyncChartApiClient("https://h", KEY, transport=httpx.MockTransport(server)) as client:
            data = await client.candles("BTCUSD-OTC", timeframe=60, limit=3)
            with pytest.raises(SymbolForbiddenError, match="not for this key"):
                await client.candles("GBPUSD-OTC")
            return data

    assert asyncio.run(main())["count"] == 3
    assert server.requests[0].headers["x-api-key"] == KEY


def test_derived_ws_url_when_status_has_none():
    assert ChartApiClient("https://tradowixapi.site", None).derived_ws_url() == "wss://tradowixapi.site"
    assert ChartApiClient("http://127.0.0.1:8765", None).derived_ws_url() == "ws://127.0.0.1:8766"
    server = FakeServer((200, {"live": True, "ws_url": None}, {}))
    assert make(server).ws_url() == f"wss://example-host?api_key={KEY}"


def test_a_base_url_that_is_not_the_api_says_so():
    def server(request):
        return httpx.Response(200, text="<html>welcome</html>", headers={"content-type": "text/html"})

    client = ChartApiClient("https://wrong-host", KEY, transport=httpx.MockTransport(server))
    with pytest.raises(ChartApiError, match="GET /api/symbols: the answer is not JSON \\(text/html\\)"):
        client.symbols()
