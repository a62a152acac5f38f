"""Given the forming bars of many symbols packed into one DynamoDB item, when collectors write
and partners read, then each partner sees exactly the forming bar of the symbol asked for, only
while its writer renews it, whichever collector writes it, and one write of all symbols costs
one request of one item (not one item per symbol)."""

from __future__ import annotations

import boto3
import pytest
from tradowix_bot.server import aws
from tradowix_bot.server.authn import OPEN
from tradowix_bot.server.market import MarketData
from tradowix_bot.server.state import StateStore
from tradowix_bot.server.store import CandleStore

T = 1_750_000_020 - 1_750_000_020 % 60  # a minute start
NOW = T + 30


def bar(close: float, volume: int | None = None, minute: int = T) -> tuple:
    return (minute, 1.0, max(1.5, close), 0.5, close, *([volume] if volume is not None else []))


def test_each_symbol_reads_its_own_bar_from_the_packed_record(aws_env):
    # given one write of three symbols' forming bars (with and without tick volume)
    state = StateStore(aws_env["StateTable"])
    state.write_forming({"BTCUSD-OTC": bar(1.25, 17), "EURUSD-OTC": bar(1.1), "pk": bar(0.75, 3)}, 6, now=NOW)
    # when each is read, then each is its own bar, as written (a symbol named like the item's
    # key attribute included); a symbol never written has none
    assert state.forming_bar("BTCUSD-OTC", NOW + 1) == (T, 1.0, 1.5, 0.5, 1.25, 17)
    assert state.forming_bar("EURUSD-OTC", NOW + 1) == (T, 1.0, 1.5, 0.5, 1.1)
    assert state.forming_bar("pk", NOW + 1) == (T, 1.0, 1.5, 0.5, 0.75, 3)
    assert state.forming_bar("GBPUSD-OTC", NOW + 1) is None


def test_a_stale_entry_is_not_served_while_a_renewed_one_is(aws_env):
    # given two symbols written at NOW, and only one of them renewed 5 s later
    state = StateStore(aws_env["StateTable"])
    store = CandleStore(aws_env["CandlesBucket"])
    store.write("BTCUSD-OTC", [(T - 60, 1.0, 1.2, 0.9, 1.1)])
    store.write("EURUSD-OTC", [(T - 60, 1.0, 1.2, 0.9, 1.1)])
    state.write_forming({"BTCUSD-OTC": bar(1.25, 5), "EURUSD-OTC": bar(1.3, 5)}, 6, now=NOW)
    state.write_forming({"EURUSD-OTC": bar(1.35, 9)}, 6, now=NOW + 5)
    # when a partner asks for candles 7 s after the first write
    market = MarketData(store, state, clock=lambda: NOW + 7)
    btc = market.candles(OPEN, "BTCUSD-OTC")
    eur = market.candles(OPEN, "EURUSD-OTC")
    # then the bar its writer stopped renewing is not served; the renewed one is, as last written
    assert [c["time"] for c in btc["candles"]] == [T - 60]
    assert [c["time"] for c in eur["candles"]] == [T - 60, T]
    assert eur["candles"][-1]["close"] == 1.35 and eur["candles"][-1]["volume"] == 9


def test_collectors_writing_different_symbols_keep_each_others_entries(aws_env):
    # given two collectors (scale-out), each writing only the symbols it holds
    first, second = StateStore(aws_env["StateTable"]), StateStore(aws_env["StateTable"])
    first.write_forming({"BTCUSD-OTC": bar(1.25, 4)}, 6, now=NOW)
    second.write_forming({"EURUSD-OTC": bar(1.1, 2)}, 6, now=NOW)
    # when the first renews its bar and the second withdraws its own (its link dropped)
    first.write_forming({"BTCUSD-OTC": bar(1.3, 6)}, 6, now=NOW + 1)
    second.write_forming({}, 6, now=NOW + 1, remove={"EURUSD-OTC"})
    # then the first's bar is there and the withdrawn one is gone at once, not when it runs out
    assert state_bar(first, "BTCUSD-OTC") == (T, 1.0, 1.5, 0.5, 1.3, 6)
    assert state_bar(first, "EURUSD-OTC") is None


def state_bar(state: StateStore, symbol: str):
    return state.forming_bar(symbol, NOW + 2)


def test_withdrawing_a_symbol_leaves_the_others_served(aws_env):
    # given three forming bars
    state = StateStore(aws_env["StateTable"])
    state.write_forming({s: bar(1.2, 1) for s in ("A-OTC", "B-OTC", "C-OTC")}, 6, now=NOW)
    # when one is withdrawn (delete_forming: the collector stops or its link drops)
    state.delete_forming({"B-OTC"})
    # then only that one is gone
    assert [state_bar(state, s) is not None for s in ("A-OTC", "B-OTC", "C-OTC")] == [True, False, True]


def test_the_forming_bars_of_many_symbols_cost_one_write_of_one_item(aws_env):
    # given 120 symbols forming at once (more than one request's worth of entries)
    state = StateStore(aws_env["StateTable"])
    client = aws.client("dynamodb")
    calls: list[tuple[str, int]] = []

    def count(model, params, **kwargs):
        items = sum(len(v) for v in params.get("RequestItems", {}).values()) or 1
        calls.append((model.name, items))

    client.meta.events.register("before-call.dynamodb", count)
    try:
        symbols = [f"S{i:03d}-OTC" for i in range(120)]
        # when the collector writes them (and withdraws one more)
        state.write_forming({s: bar(1.2, 1) for s in symbols}, 6, now=NOW, remove={"GONE-OTC"})
    finally:
        client.meta.events.unregister("before-call.dynamodb", count)
    # then it took three requests (50 entries each), each writing the one packed item (1 write
    # unit per KB of it), instead of one item per symbol (120 write units); every bar reads back
    assert calls == [("UpdateItem", 1)] * 3
    assert all(state_bar(state, s) == (T, 1.0, 1.5, 0.5, 1.2, 1) for s in symbols)
    item = boto3.client("dynamodb").get_item(
        TableName=aws_env["StateTable"], Key={"pk": {"S": "forming"}, "sk": {"S": "bars"}}
    )["Item"]
    assert len(item) == 2 + 1 + 120  # key, expires_at, one entry per symbol


def test_a_bad_entry_reads_as_no_forming_bar(aws_env):
    # given an entry that is not a bar (written by something else, or cut short)
    state = StateStore(aws_env["StateTable"])
    boto3.client("dynamodb").put_item(
        TableName=aws_env["StateTable"],
        Item={
            "pk": {"S": "forming"},
            "sk": {"S": "bars"},
            "#BTCUSD-OTC": {"S": f"{NOW + 6},{T},1.0"},  # cut short
            "#EURUSD-OTC": {"S": "garbage"},
            "#GBPUSD-OTC": {"S": f"{NOW + 6},{T},1.0,nan,1.0,1.0"},
            "#USDJPY-OTC": {"L": [{"N": str(NOW + 6)}, {"N": str(T)}]},
        },
    )
    # when a partner asks, then there is no forming bar, and no error
    for symbol in ("BTCUSD-OTC", "EURUSD-OTC", "GBPUSD-OTC", "USDJPY-OTC"):
        assert state_bar(state, symbol) is None


def test_a_writer_whose_lease_is_running_out_leaves_that_symbol_alone(aws_env):
    # given a writer forming two bars, the lease of one of them about to run out (a stalled
    # collector: another collector may already write it)
    import asyncio

    from tradowix_bot.collector import ManualClock
    from tradowix_bot.collector.writer import BarWriter

    state = StateStore(aws_env["StateTable"])
    state.write_forming({"EURUSD-OTC": bar(1.4, 8)}, 6, now=NOW)  # the new writer's entry
    writer = BarWriter(CandleStore(aws_env["CandlesBucket"]), state, ManualClock(NOW))
    writer.may_write = lambda symbol: symbol != "EURUSD-OTC"
    writer.form("BTCUSD-OTC", bar(1.25, 3))
    writer.form("EURUSD-OTC", bar(9.9, 1))
    # when it writes its forming bars
    asyncio.run(writer.flush_once())
    writer.close()
    # then its own is served, and the other writer's entry is untouched
    assert state_bar(state, "BTCUSD-OTC") == (T, 1.0, 1.5, 0.5, 1.25, 3)
    assert state_bar(state, "EURUSD-OTC") == (T, 1.0, 1.5, 0.5, 1.4, 8)


@pytest.fixture(autouse=True)
def _quiet_boto():
    boto3.set_stream_logger("botocore", level=40)
