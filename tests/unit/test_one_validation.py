"""Given one timeframe rule (`resample.validate_timeframe`) and one bar rule
(`candles.bar_problem`), when a bad timeframe or a bad bar reaches any boundary (REST, the CLI,
the partner client, an imported file, the upstream's history, a salvaged day object), then each
refuses it the same way: a partner or owner gets the same sentence everywhere, and no boundary
keeps a bar another would refuse."""

from __future__ import annotations

import argparse
import gzip
import math

import orjson
import pytest
from tradowix_bot.candles import bar_from_mapping, bar_problem, valid_bar
from tradowix_bot.cli.sdk_common import timeframe as cli_timeframe
from tradowix_bot.client.live_client import parse_subscriptions
from tradowix_bot.collector.tradowix import parse_history_row
from tradowix_bot.errors import BadRequest
from tradowix_bot.resample import validate_timeframe
from tradowix_bot.server.store import salvage_day
from unit_helpers import get

T = 1_700_000_040  # a minute
WEEK = 7 * 86400


def domain_sentence(value) -> str:
    with pytest.raises(BadRequest) as exc:
        validate_timeframe(value)
    return exc.value.message


@pytest.mark.parametrize("bad", [90, 30, WEEK + 60])
def test_rest_and_the_cli_refuse_a_bad_timeframe_with_the_same_sentence(api, bad):
    # given a bad timeframe, when a partner asks REST for candles and the owner passes it to the CLI
    answer = get("/api/candles", {"symbol": "BTCUSD-OTC", "timeframe": bad})
    with pytest.raises(argparse.ArgumentTypeError) as cli:
        cli_timeframe(str(bad))
    # then both refuse it with the domain's sentence
    body = answer.json()
    assert (answer.status, body["error"]) == (400, "invalid_timeframe")
    assert body["message"] == str(cli.value) == domain_sentence(bad)


def test_the_cli_and_the_partner_client_refuse_more_than_a_week_before_asking_the_server():
    with pytest.raises(argparse.ArgumentTypeError, match="604800"):
        cli_timeframe(str(WEEK + 60))
    with pytest.raises(ValueError, match="604800"):
        parse_subscriptions("BTCUSD-OTC", WEEK + 60)
    assert cli_timeframe(str(WEEK)) == WEEK
    assert parse_subscriptions("BTCUSD-OTC", WEEK) == [("BTCUSD-OTC", WEEK)]


@pytest.mark.parametrize("value", ["5m", 300.5, True, [60]])
def test_a_timeframe_that_is_not_whole_seconds_is_named_in_the_answer(value):
    assert domain_sentence(value).startswith("timeframe must be whole seconds, e.g. 300 for 5 minutes (got ")


BAD_BARS = {
    "high below low": (T, 1.0, 0.5, 2.0, 1.5),
    "high below close": (T, 1.0, 1.2, 0.9, 1.5),
    "infinite high": (T, 1.0, math.inf, 0.9, 1.5),
    "not a number": (T, 1.0, math.nan, 0.9, 1.5),
    "zero price": (T, 0.0, 1.0, 0.0, 0.5),
    "not a minute": (T + 30, 1.0, 2.0, 0.5, 1.5),
    "negative time": (-60, 1.0, 2.0, 0.5, 1.5),
}


@pytest.mark.parametrize("name", list(BAD_BARS))
def test_every_boundary_refuses_the_same_bad_bars(name):
    bar = BAD_BARS[name]
    problem = bar_problem(bar)
    assert problem is not None and not valid_bar(bar)
    # an imported candle file names the same problem
    with pytest.raises(ValueError) as imported:
        bar_from_mapping(dict(zip(("time", "open", "high", "low", "close"), bar, strict=True)))
    assert str(imported.value) == problem
    # the upstream's history row (milliseconds) is dropped
    assert parse_history_row([bar[0] * 1000, *bar[1:]]) is None


def test_a_salvaged_day_keeps_only_sane_bars():
    # given a day object whose writer stored an impossible bar, then cut short (truncated)
    good = [(T + 60 * i, 1.0, 2.0, 0.5, 1.5, 3) for i in range(4)]
    impossible = (T + 240, 1.0, 0.5, 2.0, 1.5)  # high below low
    stored = gzip.compress(orjson.dumps({"bars": [*good, impossible, *good]}))
    # when what can still be read of it is salvaged
    bars = salvage_day(stored[: len(stored) - 8])  # the gzip trailer lost
    # then the good bars are kept and the impossible one is not served
    assert impossible not in bars and list(bars[:4]) == good


def test_good_bars_pass_everywhere():
    bar = (T, 1.0, 2.0, 0.5, 1.5, 7)
    assert valid_bar(bar) and valid_bar(bar[:5]) and valid_bar((*bar[:5], None))
    assert bar_from_mapping({"time": T, "open": 1, "high": 2, "low": 0.5, "close": 1.5, "volume": 7.0}) == bar
    assert parse_history_row([T * 1000, 1, 2, 0.5, 1.5]) == bar[:5]
