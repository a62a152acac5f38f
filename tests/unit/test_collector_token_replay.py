"""Given the session token's stores and the replay source, when the collector reads them,
then the token comes from the right place and is refused from an unsafe file, and the
original's JSON/CSV files become stored history."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys

import pytest
from tradowix_bot.collector import Clock, Collector
from tradowix_bot.collector.replay import ReplaySource
from tradowix_bot.collector.token import TokenError, load_token, save_token_file, token_file
from tradowix_bot.errors import MalformedCandles
from tradowix_bot.server.state import StateStore
from tradowix_bot.server.store import CandleStore


def test_token_file_is_owner_only_and_the_environment_overrides_it(tmp_path, monkeypatch):
    monkeypatch.delenv("TRADOWIX_SESSION_TOKEN", raising=False)
    monkeypatch.delenv("TRADOWIX_TOKEN_PARAMETER", raising=False)
    path = save_token_file(tmp_path, "file-token")
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    assert load_token(data_dir=tmp_path) == "file-token"
    monkeypatch.setenv("TRADOWIX_SESSION_TOKEN", "env-token")
    assert load_token(data_dir=tmp_path) == "env-token"
    assert load_token("cli-token", data_dir=tmp_path) == "cli-token"


def test_a_token_file_others_can_read_is_refused_without_showing_the_token(tmp_path, monkeypatch):
    monkeypatch.delenv("TRADOWIX_SESSION_TOKEN", raising=False)
    monkeypatch.delenv("TRADOWIX_TOKEN_PARAMETER", raising=False)
    save_token_file(tmp_path, "secret-value")
    os.chmod(token_file(tmp_path), 0o644)
    with pytest.raises(TokenError) as err:
        load_token(data_dir=tmp_path)
    assert "chmod 600" in err.value.message and "secret-value" not in err.value.message


def test_the_token_comes_from_ssm_on_aws(aws_env, monkeypatch):
    import boto3

    monkeypatch.delenv("TRADOWIX_SESSION_TOKEN", raising=False)
    boto3.client("ssm").put_parameter(Name="/tradowix/session-token", Value="ssm-token", Type="SecureString")
    monkeypatch.setenv("TRADOWIX_TOKEN_PARAMETER", "/tradowix/session-token")
    assert load_token() == "ssm-token"


def test_collect_without_any_token_says_where_to_put_one(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "TRADOWIX_SESSION_TOKEN"}
    env.update(TRADOWIX_DATA_DIR=str(tmp_path), KEYS_TABLE="k", STATE_TABLE="s", CANDLES_BUCKET="b")
    out = subprocess.run(
        [sys.executable, "-m", "tradowix_bot.cli", "collect", "--source", "tradowix"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode != 0 and "TRADOWIX_SESSION_TOKEN" in out.stderr


def test_replay_turns_json_and_csv_files_into_stored_history(aws_env, tmp_path):
    clock = Clock()
    now = int(clock.now())
    t0 = now - now % 60 - 600
    (tmp_path / "EURUSD-OTC.json").write_text(
        json.dumps([{"time": t0, "open": 1.1, "high": 1.2, "low": 1.0, "close": 1.15}])
    )
    (tmp_path / "AAPL-OTC.csv").write_text(
        f"time,open,high,low,close\n{t0},190,191,189,190.5\n{t0 + 60},190.5,192,190,191\n"
    )
    store = CandleStore(aws_env["CandlesBucket"])
    collector = Collector(
        ReplaySource(tmp_path, clock), store, StateStore(aws_env["StateTable"]), clock=clock, lease_seconds=3
    )

    async def go():
        stop = asyncio.Event()
        task = asyncio.create_task(collector.run(stop))
        await asyncio.wait_for(collector.backfilled.wait(), 20)
        stop.set()
        await task

    asyncio.run(go())
    assert store.read("EURUSD-OTC") == [(t0, 1.1, 1.2, 1.0, 1.15)]
    assert store.read("AAPL-OTC") == [(t0, 190.0, 191.0, 189.0, 190.5), (t0 + 60, 190.5, 192.0, 190.0, 191.0)]


def test_a_malformed_csv_names_the_file_and_line(tmp_path):
    (tmp_path / "X-OTC.csv").write_text("time,open,high,low,close\n60,1,1,1,1\n120,1,abc,1,1\n")
    source = ReplaySource(tmp_path, Clock())
    with pytest.raises(MalformedCandles, match="X-OTC.csv:3"):
        asyncio.run(source.history("X-OTC", 10**10, 100))


def test_archive_command_writes_original_files_and_a_second_run_adds_nothing(tmp_path):
    cmd = [sys.executable, "-m", "tradowix_bot.cli", "archive", "--source", "synthetic", "--hours", "2"]
    cmd += ["--symbols", "EURUSD-OTC,AAPL-OTC", "--candles-dir", str(tmp_path)]
    first = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert first.returncode == 0, first.stderr
    assert "EURUSD-OTC: 120 new bars" in first.stdout and "archive [" in first.stderr
    before = (tmp_path / "EURUSD-OTC.json").read_text()
    second = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert "EURUSD-OTC: 0 new bars" in second.stdout or "EURUSD-OTC: 1 new bars" in second.stdout
    assert (tmp_path / "EURUSD-OTC.json").read_text().startswith(before[:-3])
