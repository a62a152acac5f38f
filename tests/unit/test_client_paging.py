"""Given a server that pages (and servers that misbehave), when the client's range helper (issue 13
item 2) `iter_candles` / `iter_candle_pages` walks a range of any length across pages and
symbols by following the server's `next` links, then it loses nothing, repeats nothing, never
sends the key to another host and never loops.

The server is a fake transport that speaks the paging contract decided for /api/candles:
`page_size=N` with `start`/`end` answers the first N bars at or after `start`; every answer has
`has_more`, `next` (a relative URL or null) and `available_from` / `available_to`."""

from __future__ import annotations

import asyncio
from urllib.parse import urlencode

import httpx
import pytest
from tradowix_bot.client.chart_client import AsyncChartApiClient, ChartApiClient, ChartApiError

KEY = "twk_" + "p" * 40
T0 = 1_760_000_000 - 1_760_000_000 % 86400  # a UTC midnight
DAY = 86400


def minute_bars(start: int, end: int) -> list[dict]:
    return [
        {"time": t, "open": 1.0, "high": 1.1, "low": 0.9, "close": 1.0 + (t % 7) / 100}
        for t in range(start, end, 60)
    ]


class PagingServer:
    """/api/candles with forward paging over stored 1m bars (per symbol)."""

    def __init__(self, bars: dict[str, list[dict]], *, forming: bool = False, prefix: str = ""):
        self.bars = bars
        self.forming = forming  # the newest stored bar is still forming
        self.prefix = prefix  # a stage path the next links carry (API Gateway's /prod)
        self.requests: list[httpx.Request] = []
        self.next_override = None  # a test may replace the next link

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        q = dict(request.url.params)
        stored = self.bars[q["symbol"]]
        start, end = int(q["start"]), int(q.get("end", 1 << 62))
        size = int(q["page_size"])
        in_range = [b for b in stored if start <= b["time"] < end]
        page, has_more = in_range[:size], len(in_range) > size
        link = None
        if has_more:
            params = {**q, "start": page[-1]["time"] + int(q.get("timeframe", 60))}
            link = f"{self.prefix}/api/candles?{urlencode(params)}"
            if self.next_override is not None:
                link = self.next_override(link)
        newest = stored[-1]["time"]
        body = {
            "symbol": q["symbol"],
            "timeframe": int(q.get("timeframe", 60)),
            "count": len(page),
            "candles": page,
            "last_closed": not (self.forming and page and page[-1]["time"] == newest),
            "has_more": has_more,
            "next": link,
            "available_from": stored[0]["time"],
            "available_to": newest,
            "timing": {},
        }
        return httpx.Response(200, json=body, headers={"ETag": f'"{start}-{size}"'})


def client_for(server, base="https://h", **kw):
    return ChartApiClient(base, KEY, transport=httpx.MockTransport(server), **kw)


def test_thirty_days_come_back_whole_across_pages():
    # given 30 days of 1m bars on a server that pages
    bars = minute_bars(T0, T0 + 30 * DAY)
    server = PagingServer({"BTCUSD-OTC": bars})
    # when a bot iterates the whole range in pages of 5,000
    got = [bar for _, bar in client_for(server).iter_candles("BTCUSD-OTC", T0, T0 + 30 * DAY, page_size=5000)]
    # then it has every bar once, oldest first, in ceil(43,200 / 5,000) = 9 requests, each keyed
    assert got == bars and len(got) == 43_200
    assert len(server.requests) == 9
    assert all(r.headers["x-api-key"] == KEY for r in server.requests)
    # and pages are not kept for conditional polls (they are read once)
    assert all("if-none-match" not in r.headers for r in server.requests)


def test_several_symbols_one_after_the_other_with_their_pages():
    bars = {
        "BTCUSD-OTC": minute_bars(T0, T0 + DAY),
        "EURUSD-OTC": minute_bars(T0 + 3600, T0 + DAY // 2),
    }
    server = PagingServer(bars)
    client = client_for(server)
    pages = list(client.iter_candle_pages(["BTCUSD-OTC", "EURUSD-OTC"], T0, T0 + DAY, page_size=1000))
    assert [p["symbol"] for p in pages] == ["BTCUSD-OTC"] * 2 + ["EURUSD-OTC"] * 1
    assert [p["has_more"] for p in pages] == [True, False, False]
    assert pages[0]["available_from"] == T0 and pages[2]["available_from"] == T0 + 3600
    got = list(client.iter_candles(["BTCUSD-OTC", "EURUSD-OTC"], T0, T0 + DAY, page_size=1000))
    assert [b for s, b in got if s == "BTCUSD-OTC"] == bars["BTCUSD-OTC"]
    assert [b for s, b in got if s == "EURUSD-OTC"] == bars["EURUSD-OTC"]


def test_an_open_range_ends_at_the_newest_bar_without_the_forming_one():
    # given a server whose newest bar is still forming
    bars = minute_bars(T0, T0 + 7000 * 60)
    server = PagingServer({"BTCUSD-OTC": bars}, forming=True)
    # when the bot iterates from T0 with no end, then the forming bar is left out ...
    got = [b for _, b in client_for(server).iter_candles("BTCUSD-OTC", T0, page_size=5000)]
    assert got == bars[:-1]
    assert "end" not in dict(server.requests[0].url.params)
    # ... unless asked for
    got = [b for _, b in client_for(server).iter_candles("BTCUSD-OTC", T0, include_forming=True)]
    assert got == bars


def test_a_page_boundary_repeated_by_the_server_is_handed_out_once():
    bars = minute_bars(T0, T0 + 100 * 60)
    server = PagingServer({"BTCUSD-OTC": bars})
    # the server's next link starts at the last bar of the page instead of after it
    server.next_override = lambda link: link.replace(f"start={T0 + 39 * 60 + 60}", f"start={T0 + 39 * 60}")
    got = [b["time"] for _, b in client_for(server).iter_candles("BTCUSD-OTC", T0, T0 + 6000, page_size=40)]
    assert got == [b["time"] for b in bars]


def test_a_next_link_to_another_host_is_refused_and_the_key_stays_home():
    bars = minute_bars(T0, T0 + 100 * 60)
    server = PagingServer({"BTCUSD-OTC": bars})
    server.next_override = lambda link: "https://evil.example" + link
    client = client_for(server)
    with pytest.raises(ChartApiError, match="refusing to follow a next link to another host"):
        list(client.iter_candles("BTCUSD-OTC", T0, T0 + 6000, page_size=40))
    assert {r.url.host for r in server.requests} == {"h"}


def test_a_server_that_says_more_but_does_not_move_is_an_error_not_a_loop():
    bars = minute_bars(T0, T0 + 100 * 60)
    server = PagingServer({"BTCUSD-OTC": bars})
    server.next_override = lambda link: link.replace(f"start={T0 + 40 * 60}", f"start={T0}")
    with pytest.raises(ChartApiError, match="brought no new bar"):
        list(client_for(server).iter_candles("BTCUSD-OTC", T0, T0 + 6000, page_size=40))
    assert len(server.requests) == 2


def test_has_more_without_a_next_link_is_an_error():
    bars = minute_bars(T0, T0 + 100 * 60)
    server = PagingServer({"BTCUSD-OTC": bars})
    server.next_override = lambda link: None
    with pytest.raises(ChartApiError, match="has_more but gives no next link"):
        list(client_for(server).iter_candles("BTCUSD-OTC", T0, T0 + 6000, page_size=40))


def test_next_links_under_a_stage_path_stay_under_it():
    bars = minute_bars(T0, T0 + 100 * 60)
    server = PagingServer({"BTCUSD-OTC": bars}, prefix="/prod")
    got = list(
        client_for(server, base="https://h/prod").iter_candles("BTCUSD-OTC", T0, T0 + 6000, page_size=40)
    )
    assert len(got) == 100
    assert [r.url.path for r in server.requests] == ["/prod/api/candles"] * 3


def test_a_server_without_paging_answers_the_whole_range_in_one_page():
    # given the original server: no has_more, page_size ignored, the whole range answered
    bars = minute_bars(T0, T0 + 3000 * 60)

    def old_server(request):
        q = dict(request.url.params)
        chosen = [b for b in bars if int(q["start"]) <= b["time"] < int(q["end"])]
        return httpx.Response(200, json={"symbol": q["symbol"], "count": len(chosen), "candles": chosen})

    got = [b for _, b in client_for(old_server).iter_candles("BTCUSD-OTC", T0, T0 + 3000 * 60, page_size=100)]
    assert got == bars


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"start": "yesterday"}, "start must be unix seconds"),
        ({"start": T0, "end": T0}, "end must be unix seconds after start"),
        ({"start": T0, "page_size": 0}, "page_size must be a positive int"),
    ],
)
def test_bad_arguments_are_refused_before_any_request(kwargs, message):
    server = PagingServer({"BTCUSD-OTC": minute_bars(T0, T0 + 600)})
    with pytest.raises(ValueError, match=message):
        list(client_for(server).iter_candles("BTCUSD-OTC", **kwargs))
    assert server.requests == []


def test_the_async_client_iterates_the_same_way():
    bars = {"BTCUSD-OTC": minute_bars(T0, T0 + 2 * DAY), "EURUSD-OTC": minute_bars(T0, T0 + DAY)}
    server = PagingServer(bars)

    async def main():
        async with AsyncChartApiClient("https://h", KEY, transport=httpx.MockTransport(server)) as client:
            got = [(s, b) async for s, b in client.iter_candles(list(bars), T0, T0 + 2 * DAY, page_size=1000)]
            pages = [p async for p in client.iter_candle_pages("EURUSD-OTC", T0, T0 + DAY, page_size=1000)]
            return got, pages

    got, pages = asyncio.run(main())
    assert [b for s, b in got if s == "BTCUSD-OTC"] == bars["BTCUSD-OTC"]
    assert [b for s, b in got if s == "EURUSD-OTC"] == bars["EURUSD-OTC"]
    assert len(pages) == 2 and pages[-1]["has_more"] is False
