"""Given candle files or a deployment with a key, when the owner runs `tradowix backtest`, then it
prints a table with intervals and a verdict, saves a PNG where asked, and bad input is one
clear error."""

from __future__ import annotations

import pytest
from chart_fakes import FakeDeployment
from tradowix_bot.candles import as_dicts, write_candle_file
from tradowix_bot.cli.__main__ import main
from tradowix_bot.collector.synthetic_market import SyntheticMarket

END = 1_750_000_200
KEY = "twk_" + "b" * 40


def run(capsys, *argv):
    try:
        code = main(list(argv))
    except SystemExit as exc:
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def two_days():
    market = SyntheticMarket()
    return {s: market.bars(s, END - 2 * 86400, END) for s in ("BTCUSD-OTC", "EURUSD-OTC")}


def test_backtest_a_candles_dir_prints_table_verdict_and_saves_the_plot(tmp_path, capsys, two_days):
    for symbol, bars in two_days.items():
        write_candle_file(tmp_path / "candles" / f"{symbol}.json", bars)
    plot = tmp_path / "reports" / "bt.png"
    code, out, err = run(capsys, "backtest", "--candles-dir", str(tmp_path / "candles"), "--plot", str(plot))
    assert code == 0
    for needle in (
        "BTCUSD-OTC  (2880 bars)",
        "EURUSD-OTC  (2880 bars)",
        "ALL SYMBOLS",
        "always_call",
        "repeat_last",
        "random",
        "95% CI (Wilson)",
        "Sweep over --min-confidence",
        "VERDICT",
    ):
        assert needle in out
    # synthetic OTC data is a random walk: the report must not claim an edge
    assert "does NOT beat the baselines beyond the 95% interval" in out.split("VERDICT")[1]
    assert f"Plot saved to {plot}" in out and plot.read_bytes()[:4] == b"\x89PNG"
    assert "[1/2] read BTCUSD-OTC.json: 2880 bars" in err  # progress goes to stderr


def test_backtest_reads_a_deployment_with_a_key(tmp_path, capsys, two_days):
    history = {s: as_dicts(b) for s, b in two_days.items()}
    with FakeDeployment(history, key=KEY) as deployment:
        code, out, err = run(
            capsys, "backtest", "--url", deployment.url, "--key", KEY, "--symbols", "EURUSD-OTC", "--no-plot"
        )
        assert code == 0 and "EURUSD-OTC  (2880 bars)" in out and "BTCUSD-OTC" not in out
        assert "[1/1] EURUSD-OTC: 2880 bars" in err
        # a wrong key: the server's answer, one line
        code, out, err = run(capsys, "backtest", "--url", deployment.url, "--key", "twk_wrong", "--no-plot")
        assert code == 1 and err == "error: HTTP 401 invalid_key: API key invalid or disabled\n"


def test_directory_without_candle_files(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("hello")
    code, out, err = run(capsys, "backtest", "--candles-dir", str(tmp_path))
    assert code == 1 and out == "" and err == f"error: {tmp_path}: no candle files (<SYMBOL>.json)\n"
    code, _, err = run(capsys, "backtest", "--candles-dir", str(tmp_path / "missing"))
    assert code == 1 and "no such directory" in err


def test_a_bad_file_names_file_and_line_and_writes_no_plot(tmp_path, capsys, two_days):
    write_candle_file(tmp_path / "BTCUSD-OTC.json", two_days["BTCUSD-OTC"][:100])
    (tmp_path / "BAD.json").write_text(
        '[{"time": 60, "open": 1, "high": 1, "low": 1, "close": 1},\n{"time": 30}]'
    )
    code, out, err = run(
        capsys, "backtest", "--candles-dir", str(tmp_path), "--plot", str(tmp_path / "p.png")
    )
    assert code == 1 and "BAD.json:2: missing field(s): open, high, low, close" in err
    assert not (tmp_path / "p.png").exists()


@pytest.mark.parametrize(
    "flags",
    [
        ["--min-confidence", "2"],
        ["--thresholds", "0.1,5"],
        ["--timeframe", "90"],
        ["--expiry", "0"],
        ["--payout", "-1"],
    ],
)
def test_bad_options_are_usage_errors(capsys, flags):
    code, _, err = run(capsys, "backtest", *flags)
    assert code == 2 and err.startswith("usage: tradowix backtest")
