"""Given the session's local stack and keys made with the CLI, when a bot uses ChartApiClient
over real HTTP (the spec's Python example verbatim, every call, the backtest), then it gets the
contract's answers, and each error status is its own exception type."""

from __future__ import annotations

import subprocess
import sys

import pytest
from tradowix_bot.client.chart_client import (
    AuthenticationError,
    BadRequestError,
    ChartApiClient,
    NotFoundError,
    SymbolForbiddenError,
)

pytestmark = pytest.mark.integration

# The "Python client" section of the partner contract, character for character.
SPEC_EXAMPLE = """
from tradowix_bot.client.chart_client import ChartApiClient
client = ChartApiClient("https://example-host", "twk_KEY")
client.verify()
data = client.candles("BTCUSD-OTC", timeframe=60)          # all stored 1m bars
data_5m = client.candles("BTCUSD-OTC", timeframe=300)
for bar in data["candles"]:
    print(bar["time"], bar["close"])
"""


@pytest.fixture(scope="module")
def keys(local_stack):
    """A full key and a key restricted to EURUSD-OTC; deleted afterwards (the stack is shared)."""
    full_id, full = local_stack.create_key("sdk-full")
    eur_id, eur = local_stack.create_key("sdk-eur", "EURUSD-OTC")
    yield full, eur
    for key_id in (full_id, eur_id):
        local_stack.cli("keys", "delete", key_id)
    local_stack.wait_open_mode()  # back to open mode for the other tests


def test_spec_example_runs_verbatim(local_stack, keys):
    full, _ = keys
    code = SPEC_EXAMPLE.replace("https://example-host", local_stack.api_url).replace("twk_KEY", full)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) > 7 * 1440 - 60  # the seeded week of 1m bars
    t0, close0 = lines[0].split()
    assert int(t0) % 60 == 0 and float(close0) > 0


def test_every_call_returns_the_contracts_shape(local_stack, keys):
    full, _ = keys
    with ChartApiClient(local_stack.api_url, full) as client:
        assert client.verify()["ok"] is True
        assert "BTCUSD-OTC" in [s["symbol"] for s in client.symbols()["symbols"]]
        data_5m = client.candles("BTCUSD-OTC", timeframe=300, limit=12)
        assert data_5m["count"] == 12 and all(b["time"] % 300 == 0 for b in data_5m["candles"])
        last = data_5m["candles"][-1]["time"]
        ranged = client.candles("BTCUSD-OTC", timeframe=60, start=last - 600, end=last)
        assert [b["time"] for b in ranged["candles"]] == list(range(last - 600, last, 60))
        timing = client.timing("BTCUSD-OTC", 300)
        assert timing["bar_close"] - timing["bar_open"] == 300 and 0 <= timing["progress"] <= 1
        status = client.live_status()
        assert "live" in status and "ws_url" in status
        assert "candles" in str(client.docs())


def test_errors_map_to_their_types_with_the_servers_message(local_stack, keys):
    full, eur = keys
    with pytest.raises(AuthenticationError) as info:
        ChartApiClient(local_stack.api_url, "twk_" + "x" * 43).candles("BTCUSD-OTC")
    assert info.value.status == 401 and info.value.message
    with pytest.raises(SymbolForbiddenError) as info:
        ChartApiClient(local_stack.api_url, eur).candles("BTCUSD-OTC")
    assert info.value.status == 403 and info.value.error
    with pytest.raises(NotFoundError):
        ChartApiClient(local_stack.api_url, full).candles("NOSUCH-OTC")
    with pytest.raises(BadRequestError) as info:
        ChartApiClient(local_stack.api_url, full).candles("BTCUSD-OTC", timeframe=90)
    assert "multiple of 60" in info.value.message


def test_backtest_reads_the_deployment(local_stack, keys, tmp_path):
    full, _ = keys
    plot = tmp_path / "bt.png"
    result = local_stack.cli(
        "backtest",
        "--url",
        local_stack.api_url,
        "--key",
        full,
        "--symbols",
        "EURUSD-OTC",
        "--plot",
        str(plot),
    )
    assert "EURUSD-OTC" in result.stdout and "VERDICT" in result.stdout
    assert plot.read_bytes()[:4] == b"\x89PNG"
