"""Given the TradingView UDF datafeed under /udf/ (issue 13 item 7), when a client that does what
TradingView's published UDF adapter does (udf_reference_client.py) drives it through the API
Gateway event the deployed API receives, then it answers as the library expects. The bars must be the REST API's bars (same market
code, no second resampler)."""

from __future__ import annotations

import time

import pytest
from tradowix_bot.server.store import CandleStore
from udf_reference_client import DatafeedError, UdfReferenceClient
from unit_helpers import T0, get, invoke

SYMBOL = "BTCUSD-OTC"
END = T0 + 2 * 86400  # the `api` fixture stores 2 days of 1m bars from T0


def transport(headers: dict | None = None):
    def send(path: str, query: str) -> tuple[int, str]:
        answer = invoke("candles_get.json", path=f"/udf/{path}", raw_query=query, headers=headers)
        return answer.status, answer.body.decode()

    return send


@pytest.fixture
def chart(api):
    """TradingView's datafeed, started as the library starts it (open mode: no key yet)."""
    client = UdfReferenceClient(transport())
    client.on_ready()
    return client


def test_the_library_starts_resolves_and_searches(chart):
    # then: the configuration is one the adapter accepts (search, not group requests)
    assert chart.configuration["supports_search"] is True
    assert chart.configuration["supports_group_request"] is False
    assert {"1", "5", "60", "1D"} <= set(chart.configuration["supported_resolutions"])
    # and a symbol resolves by ticker or by its full name from a search result
    info = chart.resolve_symbol(SYMBOL)
    assert info["ticker"] == SYMBOL and info["pricescale"] == 100 and info["minmov"] == 1
    assert info["session"] == "24x7" and info["timezone"] == "Etc/UTC" and info["has_intraday"] is True
    found = chart.search_symbols("btc", "", "")
    assert [r["ticker"] for r in found] == [SYMBOL]
    assert chart.resolve_symbol(found[0]["full_name"])["name"] == SYMBOL
    assert chart.search_symbols("usd", "", "currencies") and all(
        r["type"] == "currencies" for r in chart.search_symbols("usd", "", "currencies")
    )
    with pytest.raises(DatafeedError, match="unknown_symbol"):
        chart.resolve_symbol("NOSUCH-OTC")


@pytest.mark.parametrize(("resolution", "timeframe"), [("1", 60), ("5", 300), ("240", 14400), ("1D", 86400)])
def test_history_bars_are_the_rest_apis_bars(chart, resolution, timeframe):
    # when: the chart asks for a range, and a bot asks /api/candles for the same range
    info = chart.resolve_symbol(SYMBOL)
    start, end = T0 + 3600, T0 + 86400 + 7200
    bars, meta = chart.get_bars(info, resolution, start, end)
    rest = get("/api/candles", {"symbol": SYMBOL, "timeframe": timeframe, "start": start, "end": end}).json()
    # then: the same bars (time in ms for the library), oldest first
    assert meta == {"noData": False}
    assert [(b["time"] // 1000, b["open"], b["high"], b["low"], b["close"]) for b in bars] == [
        (c["time"], c["open"], c["high"], c["low"], c["close"]) for c in rest["candles"]
    ]
    if resolution == "1D":  # daily bars at 00:00 UTC, as UDF wants
        assert all(b["time"] // 1000 % 86400 == 0 for b in bars)


def test_countback_wins_over_from(chart):
    # when: the library asks for a 1-minute window but 300 bars (countback), as it does
    bars, _ = chart.get_bars(chart.resolve_symbol(SYMBOL), "5", END - 60, END, countback=300)
    # then: the last 300 5m bars before `to`
    assert len(bars) == 300 and bars[-1]["time"] // 1000 == END - 300
    assert bars[0]["time"] // 1000 == END - 300 * 300


def test_a_gap_answers_no_data_with_the_time_of_the_bar_before_it(chart):
    info = chart.resolve_symbol(SYMBOL)
    # when: the range lies after the stored data (a gap up to now)
    bars, meta = chart.get_bars(info, "1", END + 3600, END + 7200)
    # then: no bars, and nextTime points the library to the newest bar before the range
    assert bars == [] and meta == {"noData": True, "nextTime": END - 60}
    # and before the oldest stored bar, no nextTime: the library stops asking for older data
    bars, meta = chart.get_bars(info, "1", T0 - 7200, T0 - 3600)
    assert bars == [] and meta == {"noData": True, "nextTime": None}


def test_the_live_pulse_gets_the_last_two_bars(chart):
    # the request a live chart repeats every 10 s: 10 periods back from now, countback 2
    bars = chart.pulse(chart.resolve_symbol(SYMBOL), "1", now=time.time())
    assert [b["time"] // 1000 for b in bars] == [END - 120, END - 60]


def test_volume_is_a_column_only_when_every_bar_has_it(api, chart):
    # given: the last hour stored again with tick counts, except one minute
    counted = [(END - 3600 + 60 * i, 1.0, 2.0, 0.5, 1.5, 10 + i) for i in range(60)]
    counted[30] = counted[30][:5]
    CandleStore(api["CandlesBucket"]).write(SYMBOL, counted)
    info = chart.resolve_symbol(SYMBOL)
    # when: bars of the counted half hour, and bars that include the uncounted minute
    with_volume, _ = chart.get_bars(info, "1", END - 1800 + 60, END)
    without, _ = chart.get_bars(info, "5", END - 3600, END)
    # then: the library gets volumes only where every bar in the answer has one
    assert [b["volume"] for b in with_volume] == [10 + i for i in range(31, 60)]
    assert all("volume" not in b for b in without)


def test_the_server_time_is_unix_seconds(chart):
    assert abs(chart.get_server_time() - time.time()) < 5


def test_udf_is_keyed_like_the_rest_of_the_api(api, admin):
    # given: keys exist; one partner may read only EURUSD-OTC
    _, raw = admin.create("tv partner", ["EURUSD-OTC"])
    anonymous = UdfReferenceClient(transport())
    keyed = UdfReferenceClient(transport({"X-Api-Key": raw}))
    # then: without a key the datafeed cannot even start (the adapter refuses the answer)
    with pytest.raises(DatafeedError, match="Unsupported datafeed configuration"):
        anonymous.on_ready()
    with pytest.raises(DatafeedError, match="API key is required"):
        anonymous.get_bars({"ticker": "EURUSD-OTC"}, "1", T0, T0 + 600)
    # and with the key it sees and reads only its symbol
    keyed.on_ready()
    assert [r["ticker"] for r in keyed.search_symbols("", "", "")] == ["EURUSD-OTC"]
    bars, _ = keyed.get_bars(keyed.resolve_symbol("EURUSD-OTC"), "1", T0, T0 + 600)
    assert len(bars) == 10
    with pytest.raises(DatafeedError, match="cannot access"):
        keyed.get_bars({"ticker": SYMBOL}, "1", T0, T0 + 600)


@pytest.mark.parametrize(
    ("query", "code"),
    [
        ({"resolution": "7", "from": T0, "to": END}, "invalid_resolution"),
        ({"resolution": "1", "from": T0 * 1000, "to": END}, "invalid_from"),
        ({"resolution": "1", "from": T0, "to": END, "countback": 0}, "invalid_countback"),
        ({"resolution": "1", "from": " 5", "to": END}, "invalid_from"),
        ({"resolution": "1", "to": END}, "missing_range"),
    ],
)
def test_bad_history_requests_are_udf_errors_with_a_4xx(api, query, code):
    answer = get("/udf/history", {"symbol": SYMBOL, **query})
    body = answer.json()
    assert answer.status == 400
    assert body["s"] == "error" and body["error"] == code and body["errmsg"] == body["message"]
