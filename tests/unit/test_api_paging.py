"""Given stored history, when bots page /api/candles (issue 13 item 2), through the API Gateway
event the deployed API receives, then: `limit` keeps meaning "the last N bars of the range", `page_size`
pages forward, every answer says whether bars were left out (`has_more`) and where they are
(`next`), and where stored history begins and ends (`available_from` / `available_to`)."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

import pytest
from tradowix_bot.server.authn import OPEN
from unit_helpers import T0, get

SYMBOL = "BTCUSD-OTC"
STORED = [T0 + 60 * i for i in range(2 * 1440)]  # the `api` fixture's 2 days of 1m bars


def follow(first_query: dict) -> list[dict]:
    """Every answer a bot gets by following `next` (a relative URL) until has_more is false."""
    answers = [get("/api/candles", first_query).json()]
    while answers[-1]["has_more"]:
        link = urlsplit(answers[-1]["next"])
        assert link.path == "/api/candles" and not link.netloc and not link.scheme
        answer = get(link.path, dict(parse_qsl(link.query)))
        assert answer.status == 200, answer.body
        answers.append(answer.json())
        assert len(answers) < 50
    assert answers[-1]["next"] is None
    return answers


def test_paging_forward_with_page_size_yields_every_stored_bar_once(api):
    # when: a bot asks for pages of 1,000 bars from the first stored minute and follows `next`
    answers = follow({"symbol": SYMBOL, "start": T0, "page_size": 1000})
    # then: 3 pages, oldest first, every bar exactly once, and each page says what follows
    times = [c["time"] for a in answers for c in a["candles"]]
    assert times == STORED
    assert [a["count"] for a in answers] == [1000, 1000, 880]
    assert [a["has_more"] for a in answers] == [True, True, False]
    # and every answer tells where stored history begins and ends
    assert {(a["available_from"], a["available_to"]) for a in answers} == {(STORED[0], STORED[-1])}


def test_limit_still_means_the_last_bars_and_says_what_it_left_out(api):
    # when: a bot writes the Binance/ccxt loop: start=since, limit=1000 (48 h of 1m bars exist)
    first = get("/api/candles", {"symbol": SYMBOL, "start": T0, "limit": 1000}).json()
    # then: the contract is unchanged (the last 1,000 bars of the range) but the answer no
    # longer hides the 1,880 older ones: has_more, and a link to them
    assert [c["time"] for c in first["candles"]] == STORED[-1000:]
    assert first["has_more"] is True and first["next"].startswith("/api/candles?")
    # and following the links backwards gives every bar of the range once
    answers = follow({"symbol": SYMBOL, "start": T0, "limit": 1000})
    times = [c["time"] for a in reversed(answers) for c in a["candles"]]
    assert times == STORED


def test_an_answer_that_holds_the_whole_range_has_no_next(api):
    answer = get("/api/candles", {"symbol": SYMBOL, "timeframe": 3600, "start": T0, "end": T0 + 86400}).json()
    assert answer["count"] == 24 and answer["has_more"] is False and answer["next"] is None


def test_resampled_pages_keep_the_timeframe_and_stop_at_end(api):
    answers = follow(
        {"symbol": SYMBOL, "timeframe": 300, "start": T0 + 3600, "end": T0 + 7200, "page_size": 5}
    )
    times = [c["time"] for a in answers for c in a["candles"]]
    assert times == [T0 + 3600 + 300 * i for i in range(12)]
    assert all("timeframe=300" in a["next"] for a in answers[:-1])


@pytest.mark.parametrize("field", ["start", "end"])
def test_milliseconds_are_a_clear_400_not_an_empty_200(api, field):
    # when: a bot sends JavaScript-style milliseconds
    answer = get("/api/candles", {"symbol": SYMBOL, field: T0 * 1000})
    # then: 400 naming the mistake and the value in seconds
    assert answer.status == 400, answer.body
    body = answer.json()
    assert body["error"] == f"invalid_{field}" and "milliseconds" in body["message"]
    assert str(T0) in body["message"]


@pytest.mark.parametrize(
    ("field", "value"),
    [("start", "-60"), ("end", str(10**16)), ("page_size", "0"), ("page_size", str(10**9))],
)
def test_absurd_range_and_page_values_are_400(api, field, value):
    answer = get("/api/candles", {"symbol": SYMBOL, field: value})
    assert answer.status == 400 and answer.json()["error"] == f"invalid_{field}", answer.body


def test_page_size_with_limit_pages_through_the_last_bars_of_the_range(api):
    answers = follow({"symbol": SYMBOL, "limit": 100, "page_size": 40})
    times = [c["time"] for a in answers for c in a["candles"]]
    assert times == STORED[-100:] and [a["count"] for a in answers] == [40, 40, 20]


@pytest.mark.parametrize(
    "query",
    [
        {},
        {"limit": 1500},
        {"start": T0 + 600, "end": T0 + 86400 + 600},
        {"start": T0 + 86400, "page_size": 1440},
        {"start": T0 + 86400 - 60, "page_size": 1442},
        {"timeframe": 300, "limit": 10},
        {"start": T0 + 200, "end": T0 + 100},
    ],
)
def test_whole_days_encoded_once_give_the_same_bytes_as_encoding_every_bar(api, query):
    import orjson
    from partner_api import context

    # given: the API's market, warm (its stored days cached)
    market = context.services.market()
    query = dict(query)
    timeframe = query.pop("timeframe", None)
    for _ in range(2):  # the second time, whole days come from the encoded-day cache
        answer = market.candles_answer(OPEN, SYMBOL, timeframe, **query)
        # then: the spliced body is byte for byte the plain encoding of the answer
        assert answer.body(market.encoded_days) == orjson.dumps(answer.as_dict())
