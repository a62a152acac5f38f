"""Given candle files, when a partner runs `tradowix signal FILE`, then it prints the latest bar's
signal (or no trade below the threshold), and every bad input is one clear line with the right
exit code."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from tradowix_bot.candles import write_candle_file
from tradowix_bot.cli.__main__ import main
from tradowix_bot.collector.synthetic_market import SyntheticMarket

END = 1_750_000_200  # a multiple of 300: the last 5m bar is whole


@pytest.fixture
def candle_file(tmp_path):
    path = tmp_path / "BTCUSD-OTC.json"
    write_candle_file(path, SyntheticMarket().bars("BTCUSD-OTC", END - 200 * 60, END))
    return path


def run(capsys, *argv):
    try:
        code = main(list(argv))
    except SystemExit as exc:  # argparse: usage errors and --help
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


def test_prints_the_signal_of_the_last_bar(candle_file, capsys):
    code, out, err = run(capsys, "signal", str(candle_file), "--min-confidence", "0")
    assert code == 0 and err == ""
    assert "BTCUSD-OTC  60s" in out and ("CALL" in out or "PUT" in out)
    assert "enter at the next bar's open, expiry 1 bar(s)" in out
    code, out, _ = run(capsys, "signal", str(candle_file), "--json", "--expiry", "3", "--timeframe", "300")
    doc = json.loads(out)
    assert doc["symbol"] == "BTCUSD-OTC" and doc["timeframe"] == 300
    assert doc["bar_time"] == END - 300 and doc["expiry_time"] == doc["bar_time"] + 4 * 300
    assert 0 <= doc["confidence"] <= 1 and doc["direction"] in ("CALL", "PUT")


def test_below_the_threshold_it_says_no_trade(candle_file, capsys):
    code, out, _ = run(capsys, "signal", str(candle_file), "--min-confidence", "1")
    assert code == 0 and "no trade" in out and "below --min-confidence 1" in out


@pytest.mark.parametrize(
    "content, message",
    [
        ("", "BTC.json:1: empty file"),
        (
            '[{"time": 120, "open": 1, "high": 1, "low": 1, "close": 1},\n'
            ' {"time": 60, "open": 1, "high": 1, "low": 1, "close": 1}]',
            "BTC.json:2: time 60 is older than the bar before it",
        ),
        (
            '[{"time": 60, "open": 1, "high": 1, "low": 1, "close": 1},\n'
            ' {"time": 60, "open": 1, "high": 1, "low": 1, "close": 1}]',
            "BTC.json:2: duplicate time 60 (first at line 1)",
        ),
        (
            '[{"time": 60, "open": 1, "high": 1, "low": 1, "close": 1}]',
            "need at least 20 bars for a signal, got 1",
        ),
        ("{not json", "BTC.json:1: not valid JSON"),
    ],
    ids=["empty", "out-of-order", "duplicated", "too-few-bars", "not-json"],
)
def test_bad_files_are_one_clear_line_and_exit_1(tmp_path, capsys, content, message):
    path = tmp_path / "BTC.json"
    path.write_text(content)
    code, out, err = run(capsys, "signal", str(path))
    assert code == 1 and out == ""
    assert err.startswith("error: ") and message in err and err.count("\n") == 1
    assert path.read_text() == content  # the file is left as it was


def test_missing_file(tmp_path, capsys):
    code, _, err = run(capsys, "signal", str(tmp_path / "nope.json"))
    assert code == 1 and err == f"error: {tmp_path / 'nope.json'}: no such file\n"


@pytest.mark.parametrize("value", ["2", "-0.1", "high"])
def test_min_confidence_outside_0_to_1_is_a_usage_error(candle_file, capsys, value):
    code, _, err = run(capsys, "signal", str(candle_file), "--min-confidence", value)
    assert code == 2 and err.startswith("usage: tradowix signal") and "--min-confidence" in err


@pytest.mark.parametrize(
    "argv", [["bogus"], ["signal"], ["signal", "x.json", "--bogus"], ["backtest", "--nope"], ["live"]]
)
def test_unknown_command_or_flag_prints_usage_and_exits_2(capsys, argv):
    code, out, err = run(capsys, *argv)
    assert code == 2 and out == "" and err.startswith("usage: tradowix")


@pytest.mark.parametrize("command", ["signal", "backtest", "live"])
def test_every_command_has_help(capsys, command):
    code, out, _ = run(capsys, command, "--help")
    assert code == 0 and out.startswith(f"usage: tradowix {command}") and "--min-confidence" in out


def test_console_entry_point_runs_as_a_module(candle_file):
    # given the real process entry point; when the file is fine; then exit 0 and the signal line
    result = subprocess.run(
        [sys.executable, "-m", "tradowix_bot.cli", "signal", str(candle_file), "--min-confidence", "0"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0 and "BTCUSD-OTC" in result.stdout and "Traceback" not in result.stderr
