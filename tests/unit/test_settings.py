"""Given the environment a process starts with, when a name it needs is missing or a number is
not one, then it stops at start with one message naming every bad variable: never a default
bucket or table, never a failure later in a partner's request."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from tradowix_bot.server.config import Settings, SettingsError
from tradowix_bot.server.services import Services

ROOT = Path(__file__).resolve().parents[2]
GOOD = {"CANDLES_BUCKET": "my-candles", "KEYS_TABLE": "my-keys", "STATE_TABLE": "my-state"}


def test_a_missing_bucket_is_an_error_not_a_default_bucket():
    with pytest.raises(SettingsError) as refused:
        Settings.from_env(environ={"KEYS_TABLE": "my-keys", "STATE_TABLE": "my-state"})
    assert "CANDLES_BUCKET is not set" in str(refused.value)


def test_every_bad_variable_is_named_at_once():
    env = {
        "KEY_CACHE_SECONDS": "thirty",
        "MAX_LIMIT": "0",
        "LIVE_THROTTLE_SECONDS": "-1",
        "LIVE_REVALIDATE_SECONDS": "0.5",
    }
    with pytest.raises(SettingsError) as refused:
        Settings.from_env(environ=env, require=("CONNECTIONS_TABLE",))
    message = str(refused.value)
    for part in (
        "CANDLES_BUCKET is not set",
        "KEYS_TABLE is not set",
        "STATE_TABLE is not set",
        "CONNECTIONS_TABLE is not set",
        "KEY_CACHE_SECONDS='thirty' is not a whole number",
        "MAX_LIMIT=0 is below 1",
        "LIVE_THROTTLE_SECONDS=-1 is below 0",
        "LIVE_REVALIDATE_SECONDS=0.5 is below 1",
    ):
        assert part in message


def test_good_settings_are_read():
    settings = Settings.from_env(environ={**GOOD, "KEY_CACHE_SECONDS": "5", "LIVE_THROTTLE_SECONDS": "0"})
    assert (settings.candles_bucket, settings.key_cache_seconds, settings.live_throttle_seconds) == (
        "my-candles",
        5,
        0.0,
    )


def run_python(code: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120, cwd=ROOT
    )


def test_the_api_function_stops_at_init_naming_the_missing_bucket():
    env = {k: v for k, v in os.environ.items() if k not in ("CANDLES_BUCKET", "KEYS_TABLE", "STATE_TABLE")}
    env.update(KEYS_TABLE="my-keys", STATE_TABLE="my-state", PYTHONPATH=str(ROOT / "functions" / "api"))
    out = run_python("import partner_api.app", env)
    assert out.returncode != 0
    assert "SettingsError: invalid settings: CANDLES_BUCKET is not set" in out.stderr


def test_the_collector_command_says_which_setting_is_missing_in_one_line(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CANDLES_", "STATE_", "AWS_ENDPOINT"))}
    env.update(KEYS_TABLE="my-keys", TRADOWIX_DATA_DIR=str(tmp_path))
    out = subprocess.run(
        [sys.executable, "-m", "tradowix_bot.cli", "collect", "--source", "synthetic"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 1
    assert out.stderr.strip().splitlines() == [
        "error: invalid settings: CANDLES_BUCKET is not set; STATE_TABLE is not set (see template.yaml)"
    ]


def test_the_publisher_rechecks_keys_as_often_as_the_setting_says():
    # given a deployment that re-checks open connections' keys every 3 s
    live = {
        **GOOD,
        "CONNECTIONS_TABLE": "c",
        "WS_MANAGEMENT_ENDPOINT": "https://x/prod",
        "LIVE_REVALIDATE_SECONDS": "3",
    }
    # when the composition root builds the collector's publisher
    publisher = Services(lambda: Settings.from_env(environ=live)).publisher()
    # then it re-checks every 3 s, and its key cache is no older than that
    assert publisher.revalidate_seconds == 3.0
    assert publisher.guard.auth.keys.cache_seconds <= 3.0
