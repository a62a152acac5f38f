"""Given a server that offers conditional GETs and gzip (or fails), when the client calls it
(issue 13 item 4), then it uses what the server offers: conditional GETs (ETag → 304), gzip, a
typed error for 500, network failures that are not "HTTP 503", and base URLs without a scheme
refused clearly.

The server is faked with httpx.MockTransport: each test says what the server answers."""

from __future__ import annotations

import asyncio
import gzip
import json

import httpx
import pytest
from tradowix_bot.cli.__main__ import main
from tradowix_bot.client import chart_client
from tradowix_bot.client.chart_client import (
    AsyncChartApiClient,
    ChartApiClient,
    ChartApiError,
    NetworkError,
    ServerError,
    UnavailableError,
)

KEY = "twk_" + "e" * 40
T0 = 1_710_000_030.0  # 30 s into a minute
BARS = [{"time": 1_710_000_000 - 60 * i, "open": 1.1, "high": 1.2, "low": 1.0, "close": 1.15} for i in (2, 1)]


def timing(now: float, tf: int = 60) -> dict:
    bar_open = int(now // tf) * tf
    return {
        "symbol": "BTCUSD-OTC",
        "timeframe": tf,
        "server_time": now,
        "bar_open": bar_open,
        "bar_close": bar_open + tf,
        "elapsed": now - bar_open,
        "seconds_left": bar_open + tf - now,
        "progress": round((now - bar_open) / tf, 4),
    }


class Clock:
    def __init__(self, now: float):
        self.now = now

    def time(self) -> float:
        return self.now


@pytest.fixture(autouse=True)
def clock(monkeypatch):
    """The client's clock (the 304 answer's countdown) and its retry waits, both faked."""
    fake = Clock(T0)
    waits: list[float] = []
    monkeypatch.setattr(chart_client.time, "time", fake.time)
    monkeypatch.setattr(chart_client.time, "sleep", waits.append)

    async def no_wait(seconds):
        waits.append(seconds)

    monkeypatch.setattr(chart_client.asyncio, "sleep", no_wait)
    fake.waits = waits
    return fake


class EtagServer:
    """Answers candles with an ETag (the data's, not the timing's); 304 when it matches."""

    def __init__(self, clock: Clock):
        self.clock = clock
        self.requests: list[httpx.Request] = []
        self.bars = list(BARS)

    def etag(self) -> str:
        return f'W/"{len(self.bars)}"'

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if request.headers.get("if-none-match") == self.etag():
            return httpx.Response(304, headers={"ETag": self.etag()})
        body = {
            "symbol": "BTCUSD-OTC",
            "timeframe": 60,
            "count": len(self.bars),
            "candles": self.bars,
            "last_closed": True,
            "timing": timing(self.clock.now),
        }
        return httpx.Response(200, json=body, headers={"ETag": self.etag()})


def test_a_repeated_poll_is_conditional_and_a_304_gives_the_same_data_with_a_fresh_countdown(clock):
    # given a server that tags its candles answers
    server = EtagServer(clock)
    client = ChartApiClient("https://h", KEY, transport=httpx.MockTransport(server))
    first = client.candles("BTCUSD-OTC", timeframe=60, limit=2)
    # when the bot polls again 20 s later and nothing changed
    clock.now = T0 + 20
    second = client.candles("BTCUSD-OTC", timeframe=60, limit=2)
    # then the poll carried the ETag, the server answered 304, and the bot sees the same bars ...
    assert "if-none-match" not in server.requests[0].headers
    assert server.requests[1].headers["if-none-match"] == 'W/"2"'
    assert second["candles"] == first["candles"] == BARS and second["count"] == 2
    # ... with the countdown of now, not of the kept answer
    assert second["timing"] == timing(T0 + 20)
    # and when a bar is added, the next poll gets the new answer
    server.bars.append({"time": 1_710_000_000, "open": 1.1, "high": 1.2, "low": 1.0, "close": 1.2})
    third = client.candles("BTCUSD-OTC", timeframe=60, limit=2)
    assert third["count"] == 3 and third["candles"][-1]["close"] == 1.2


def test_the_kept_answer_is_not_shared_with_the_caller(clock):
    # given a bot that edits the answer it got (e.g. drops the forming bar)
    server = EtagServer(clock)
    client = ChartApiClient("https://h", KEY, transport=httpx.MockTransport(server))
    client.candles("BTCUSD-OTC")["candles"].pop()
    # when the next poll is answered 304, then it still has every bar
    assert client.candles("BTCUSD-OTC")["candles"] == BARS


def test_other_queries_are_not_conditional(clock):
    server = EtagServer(clock)
    client = ChartApiClient("https://h", KEY, transport=httpx.MockTransport(server))
    client.candles("BTCUSD-OTC", limit=2)
    client.candles("BTCUSD-OTC", limit=3)
    assert [r.headers.get("if-none-match") for r in server.requests] == [None, None]


def test_the_async_client_polls_conditionally_too(clock):
    server = EtagServer(clock)

    async def main():
        async with AsyncChartApiClient("https://h", KEY, transport=httpx.MockTransport(server)) as client:
            await client.candles("BTCUSD-OTC")
            clock.now = T0 + 5
            return await client.candles("BTCUSD-OTC")

    data = asyncio.run(main())
    assert server.requests[1].headers["if-none-match"] == 'W/"2"'
    assert data["candles"] == BARS and data["timing"]["server_time"] == T0 + 5


def test_answers_are_asked_and_read_gzip_compressed():
    # given a server that compresses when the client accepts it
    def server(request):
        assert "gzip" in request.headers.get("accept-encoding", "")
        body = gzip.compress(json.dumps({"count": 2, "candles": BARS}).encode())
        return httpx.Response(200, content=body, headers={"Content-Encoding": "gzip"})

    # when the client asks for candles, then it reads the compressed answer
    data = ChartApiClient("https://h", KEY, transport=httpx.MockTransport(server)).candles("BTCUSD-OTC")
    assert data["candles"] == BARS


@pytest.mark.parametrize("status", [500, 501])
def test_a_server_failure_is_a_server_error_with_its_message_and_not_retried(status):
    calls = []

    def server(request):
        calls.append(request)
        return httpx.Response(status, json={"error": "internal_error", "message": "the handler failed"})

    client = ChartApiClient("https://h", KEY, transport=httpx.MockTransport(server))
    with pytest.raises(ServerError) as info:
        client.symbols()
    assert isinstance(info.value, ChartApiError)
    assert info.value.status == status and info.value.error == "internal_error"
    assert info.value.message == "the handler failed" and len(calls) == 1


def test_api_gateways_bare_500_is_a_server_error():
    def server(request):  # what API Gateway answers when the function crashes
        return httpx.Response(500, json={"message": "Internal Server Error"})

    with pytest.raises(ServerError, match="Internal Server Error"):
        ChartApiClient("https://h", KEY, transport=httpx.MockTransport(server)).symbols()


def test_a_network_failure_has_no_http_status(clock):
    def server(request):
        raise httpx.ConnectError("[Errno 111] Connection refused", request=request)

    client = ChartApiClient("https://h", KEY, transport=httpx.MockTransport(server), max_retries=2)
    with pytest.raises(NetworkError) as info:
        client.symbols()
    # still an UnavailableError (code that catches that keeps working), but no "503"
    assert isinstance(info.value, UnavailableError) and info.value.status is None
    assert "cannot reach https://h" in info.value.message and "Connection refused" in info.value.message
    assert len(clock.waits) == 2  # retried like before


def test_the_cli_reports_a_network_failure_without_an_http_status(capsys):
    # given a deployment URL where nothing listens
    code = main(["backtest", "--url", "http://127.0.0.1:9", "--key", KEY, "--no-plot"])
    err = capsys.readouterr().err
    # then one line, and no made-up HTTP status
    assert code == 1 and err.startswith("error: GET /api/symbols: cannot reach http://127.0.0.1:9")
    assert "HTTP 503" not in err and err.count("\n") == 1


@pytest.mark.parametrize(
    "url, suggestion",
    [
        ("tradowixapi.site", "https://tradowixapi.site"),
        ("127.0.0.1:8765", "https://127.0.0.1:8765"),
        ("localhost:8765", "https://localhost:8765"),
        ("ws://127.0.0.1:8766", "https://127.0.0.1:8766"),
        ("https://", "https://tradowixapi.site"),
    ],
)
def test_a_base_url_without_http_scheme_is_refused_clearly(url, suggestion):
    with pytest.raises(ValueError, match="must start with https://") as info:
        ChartApiClient(url, KEY)
    assert suggestion in str(info.value)


def test_the_cli_refuses_a_url_without_a_scheme_in_one_line(capsys):
    code = main(["backtest", "--url", "tradowixapi.site", "--key", KEY, "--no-plot"])
    err = capsys.readouterr().err
    assert code == 1 and err.startswith("error: chart URL 'tradowixapi.site' must start with https://")
    assert err.count("\n") == 1


def test_the_kept_answers_are_bounded_to_the_most_recent_urls(clock):
    # given a bot that polls more distinct queries than the client keeps
    server = EtagServer(clock)
    client = ChartApiClient("https://h", KEY, transport=httpx.MockTransport(server))
    for limit in range(1, chart_client.ETAG_CACHE_ENTRIES + 2):
        client.candles("BTCUSD-OTC", limit=limit)
    # when it polls the oldest and the newest again
    client.candles("BTCUSD-OTC", limit=1)
    client.candles("BTCUSD-OTC", limit=chart_client.ETAG_CACHE_ENTRIES + 1)
    # then only the newest is still conditional: memory stays bounded
    assert [r.headers.get("if-none-match") for r in server.requests[-2:]] == [None, 'W/"2"']
