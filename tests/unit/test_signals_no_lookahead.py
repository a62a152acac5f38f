"""Given candles whose last bar may still be forming, when `signal` and the backtest run (issue 13
item 6), then `signal` never decides on a bar that has not closed, the backtest can count a tie
as a loss, and its sweep warns about picking the best row."""

from __future__ import annotations

import json
import random

import pytest
from tradowix_bot.candles import Bar, as_dicts, write_candle_file
from tradowix_bot.cli.__main__ import main
from tradowix_bot.collector.synthetic_market import SyntheticMarket
from tradowix_bot.strategy import backtest

END = 1_750_000_200  # a multiple of 300


def run(capsys, *argv):
    try:
        code = main(list(argv))
    except SystemExit as exc:
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def bars():
    return SyntheticMarket().bars("BTCUSD-OTC", END - 200 * 60, END)


def saved_answer(path, bars, last_closed):
    """What a bot saves from GET /api/candles."""
    doc = {
        "symbol": "BTCUSD-OTC",
        "timeframe": 60,
        "base_timeframe": 60,
        "count": len(bars),
        "candles": as_dicts(bars),
        "last_closed": last_closed,
        "timing": {},
    }
    path.write_text(json.dumps(doc))
    return path


def test_signal_skips_the_forming_bar_of_a_saved_candles_answer(tmp_path, capsys, bars):
    # given a saved /api/candles answer whose newest bar was still forming
    path = saved_answer(tmp_path / "BTCUSD-OTC.json", bars, last_closed=False)
    # when the partner asks for the signal
    code, out, err = run(capsys, "signal", str(path), "--json")
    # then the signal is decided at the close of the last closed bar, and the command says so
    assert code == 0, err
    doc = json.loads(out)
    assert doc["bar_time"] == bars[-2].time and doc["entry_time"] == bars[-1].time
    assert "still forming (last_closed: false): skipped" in err and doc["notes"]


def test_signal_uses_the_last_bar_of_an_answer_whose_bars_are_all_closed(tmp_path, capsys, bars):
    path = saved_answer(tmp_path / "BTCUSD-OTC.json", bars, last_closed=True)
    code, out, err = run(capsys, "signal", str(path), "--json")
    assert code == 0 and err == ""
    assert json.loads(out)["bar_time"] == bars[-1].time and json.loads(out)["notes"] == []


def test_signal_skips_a_higher_timeframe_bar_whose_minutes_are_not_all_there(tmp_path, capsys, bars):
    # given 1m bars that end 3 minutes into a 5-minute bar
    path = tmp_path / "BTCUSD-OTC.json"
    write_candle_file(path, bars[:-2])
    # when the signal is asked on 5-minute bars
    code, out, err = run(capsys, "signal", str(path), "--json", "--timeframe", "300")
    # then it is decided at the last whole 5-minute bar
    assert code == 0, err
    assert json.loads(out)["bar_time"] == END - 600
    assert "the last 300s bar" in err and "has not closed" in err


def ties_and_moves(n=3000, seed=11):
    """A random walk on a coarse tick (0.01) where the price often does not move: many ties."""
    rng, x, closes = random.Random(seed), 100.0, []
    for _ in range(n):
        x = round(x + rng.choice((-0.01, 0.0, 0.0, 0.01)), 2)
        closes.append(x)
    out, prev = [], closes[0]
    for i, c in enumerate(closes):
        out.append(Bar(1_710_000_000 + 60 * i, prev, max(prev, c), min(prev, c), c))
        prev = c
    return {"TIE": out}


def test_a_tie_counts_as_a_loss_when_the_broker_says_so():
    # given a series where the price at expiry often equals the entry
    data = ties_and_moves()
    refunded = backtest.run(data, min_confidence=0.0)
    # when the backtest counts a tie as a loss
    kept = backtest.run(data, min_confidence=0.0, tie_is_loss=True)
    # then every draw became a loss, for the strategy and every baseline alike
    for name in ("strategy", *backtest.BASELINES):
        before, after = refunded.overall.scores[name], kept.overall.scores[name]
        assert before.draws > 0 and after.draws == 0
        assert after.wins == before.wins and after.losses == before.losses + before.draws
        assert after.result(0.85) == before.result(0.85) - before.draws
    assert "a tie (equal price) counts as a LOSS" in backtest.format_report(kept)
    assert "a tie is a draw (refunded)" in backtest.format_report(refunded)


def test_the_cli_tie_option_and_the_sweep_warning(tmp_path, capsys):
    write_candle_file(tmp_path / "TIE.json", ties_and_moves()["TIE"])
    code, out, err = run(capsys, "backtest", "--candles-dir", str(tmp_path), "--tie", "loss", "--no-plot")
    assert code == 0, err
    assert "a tie (equal price) counts as a LOSS" in out
    # the sweep is followed by the warning that its best row overstates the edge
    sweep = out.split("Sweep over --min-confidence")[1]
    assert "Warning: choosing the best of these 10 rows after seeing them overstates the edge" in sweep
    code, _, err = run(capsys, "backtest", "--candles-dir", str(tmp_path), "--tie", "maybe")
    assert code == 2 and "--tie" in err
