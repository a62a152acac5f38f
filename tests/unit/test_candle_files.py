"""Given the original server's candle files (list or wrapper form, good or malformed), when they
are imported into the store or exported back, then good files round-trip, and a malformed one
is reported by file and line with nothing of it imported."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tradowix_bot.candles import parse_candle_text, read_candle_file, write_candle_file
from tradowix_bot.errors import MalformedCandles
from tradowix_bot.server.importer import candles_dir, export_dir, import_dir
from tradowix_bot.server.store import CandleStore
from unit_helpers import T0, synthetic_bars


def as_file_rows(bars):
    return [{"time": t, "open": o, "high": h, "low": lo, "close": c} for t, o, h, lo, c in bars]


def write_list_file(path: Path, bars) -> None:
    path.write_text(json.dumps(as_file_rows(bars), indent=2))


def test_list_and_wrapper_files_import_the_same_bars(aws_env, tmp_path):
    # given: one symbol in the plain list format, another in the {"candles": [...]} wrapper
    bars = synthetic_bars(T0, 5)
    write_list_file(tmp_path / "BTCUSD-OTC.json", bars)
    (tmp_path / "EURUSD-OTC.json").write_text(
        json.dumps({"symbol": "EURUSD-OTC", "candles": as_file_rows(bars)}, indent=1)
    )
    store = CandleStore(aws_env["CandlesBucket"])
    # when
    results = import_dir(store, tmp_path)
    # then: both imported, bars identical and in order
    assert [(r.symbol, r.bars, r.error) for r in results] == [
        ("BTCUSD-OTC", 5, None),
        ("EURUSD-OTC", 5, None),
    ]
    assert store.read("BTCUSD-OTC") == bars
    assert store.read("EURUSD-OTC") == bars


@pytest.mark.parametrize(
    ("rows_text", "bad_line", "reason"),
    [
        # line numbers count from 1; the opening '[' is line 1, bar i sits on line i + 2
        ('{"time": T, "open": 1.0, "high": 0.5, "low": 0.9, "close": 1.0}', 4, "inconsistent"),
        ('{"time": T, "open": 1.0, "high": 1.1, "low": 0.9}', 4, "missing field(s): close"),
        ('{"time": T, "open": "1.0", "high": 1.1, "low": 0.9, "close": 1.0}', 4, "'open' must be a number"),
        ('{"time": 1710028830, "open": 1.0, "high": 1.1, "low": 0.9, "close": 1.0}', 4, "start of a minute"),
        ('{"time": T0, "open": 1.0, "high": 1.1, "low": 0.9, "close": 1.0}', 4, "duplicate time"),
        ('{"time": T, "open": NaN, "high": 1.1, "low": 0.9, "close": 1.0}', 4, "positive finite"),
        ('{"time": Infinity, "open": 1.0, "high": 1.1, "low": 0.9, "close": 1.0}', 4, "whole unix seconds"),
        ('{"time": T, "open": -1.0, "high": 1.1, "low": -2, "close": 1.0}', 4, "positive"),
        ("[1710028920, 1.0, 1.1, 0.9, 1.0]", 4, "expected an object"),
        ('{"time": T, "open": 1.0, "high": 1.1, "low": 0.9, "close": 1.0', 5, "not valid JSON"),
    ],
)
def test_malformed_file_names_file_and_line_and_imports_nothing_of_it(
    aws_env, tmp_path, rows_text, bad_line, reason
):
    # given: a good file, and a file whose third bar (on `bad_line`) is broken
    good = synthetic_bars(T0, 3)
    write_list_file(tmp_path / "EURUSD-OTC.json", good)
    rows = [json.dumps(r) for r in as_file_rows(synthetic_bars(T0, 2))]
    third = rows_text.replace("T0", str(T0)).replace("T", str(T0 + 120))
    (tmp_path / "BTCUSD-OTC.json").write_text("[\n" + ",\n".join([*rows, third]) + "\n]\n")
    store = CandleStore(aws_env["CandlesBucket"])
    # when
    results = {r.path.name: r for r in import_dir(store, tmp_path)}
    # then: the message names the file and the line; nothing of that file is stored
    bad = results["BTCUSD-OTC.json"]
    assert bad.error is not None and bad.bars == 0
    assert f"{tmp_path / 'BTCUSD-OTC.json'}:{bad_line}:" in bad.error
    assert reason in bad.error
    assert store.read("BTCUSD-OTC") is None
    # and the other file is still imported
    assert results["EURUSD-OTC.json"].error is None
    assert store.read("EURUSD-OTC") == good


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "empty file"),
        ('{"bars": []}', "expected a list of candles"),
        ('"hello"', "expected a list of candles"),
        ('{"candles": 5}', "expected a list of candles"),
    ],
)
def test_files_of_the_wrong_shape_are_rejected_at_line_1(aws_env, tmp_path, text, reason):
    (tmp_path / "BTCUSD-OTC.json").write_text(text)
    results = import_dir(CandleStore(aws_env["CandlesBucket"]), tmp_path)
    assert results[0].error.startswith(f"{tmp_path / 'BTCUSD-OTC.json'}:1:")
    assert reason in results[0].error


def test_file_name_that_is_not_a_symbol_is_reported_not_imported(aws_env, tmp_path):
    write_list_file(tmp_path / "bad name.json", synthetic_bars(T0, 2))
    store = CandleStore(aws_env["CandlesBucket"])
    [result] = import_dir(store, tmp_path)
    assert "bad name.json" in result.error and "not a symbol" in result.error
    assert store.symbols_with_data() == []


def test_wrapper_line_numbers_point_at_the_broken_bar():
    text = '{\n  "symbol": "X",\n  "candles": [\n    {"time": 60, "open": 1, "high": 1, "low": 1, "close": 1},\n    {"time": 120}\n  ]\n}\n'
    with pytest.raises(MalformedCandles) as info:
        parse_candle_text(text, "X.json")
    assert info.value.message.startswith("X.json:5: missing field(s)")


def test_unordered_bars_are_sorted_on_import():
    bars = synthetic_bars(T0, 3)
    text = json.dumps(as_file_rows([bars[2], bars[0], bars[1]]))
    assert parse_candle_text(text, "X.json") == bars


def test_export_writes_the_original_format_and_round_trips(aws_env, tmp_path):
    # given: bars across a day boundary imported from a file with integer prices
    source = tmp_path / "in"
    source.mkdir()
    bars = synthetic_bars(T0 - 120, 5)
    (source / "BTCUSD-OTC.json").write_text(
        json.dumps([{"time": T0, "open": 2, "high": 3, "low": 1, "close": 2}] + as_file_rows(bars[:2]))
    )
    store = CandleStore(aws_env["CandlesBucket"])
    import_dir(store, source)
    store.write("BTCUSD-OTC", bars[2:])  # later live bars; T0 is replaced by bars[2]
    # when: exported, then exported again after re-importing the export into a fresh store
    out = tmp_path / "out"
    [result] = export_dir(store, out)
    exported = (out / "BTCUSD-OTC.json").read_text()
    # then: a plain list of {time, open, high, low, close}, oldest first, equal to the store
    rows = json.loads(exported)
    assert set(rows[0]) == {"time", "open", "high", "low", "close"}
    assert [r["time"] for r in rows] == [b[0] for b in bars]
    assert read_candle_file(out / "BTCUSD-OTC.json") == bars == store.read("BTCUSD-OTC")
    assert result.bars == 5
    store.delete_days_before("BTCUSD-OTC", "9999-01-01")
    import_dir(store, out)
    export_dir(store, tmp_path / "again")
    assert (tmp_path / "again" / "BTCUSD-OTC.json").read_text() == exported


def test_export_of_nothing_is_an_empty_list(tmp_path):
    write_candle_file(tmp_path / "X.json", [])
    assert json.loads((tmp_path / "X.json").read_text()) == []
    assert read_candle_file(tmp_path / "X.json") == []


def test_candles_dir_honours_the_flag_then_the_environment(monkeypatch, tmp_path):
    monkeypatch.delenv("TRADOWIX_CANDLES_DIR", raising=False)
    assert candles_dir() == Path("data/candles")
    monkeypatch.setenv("TRADOWIX_CANDLES_DIR", str(tmp_path))
    assert candles_dir() == tmp_path
    assert candles_dir(tmp_path / "flag") == tmp_path / "flag"
