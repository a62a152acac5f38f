"""Given the API on in-process moto, when partners call it, then answers follow the contract."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient


@pytest.fixture
def api(aws_env):
    from partner_api import context
    from partner_api.app import app
    from tradowix_bot.server.store import CandleStore

    context.reset()
    store = CandleStore(aws_env["CandlesBucket"])
    store.write(
        "BTCUSD-OTC", [(1_710_000_000 + 60 * i, 1.0 + i, 2.0 + i, 0.5 + i, 1.5 + i) for i in range(10)]
    )
    yield TestClient(app)
    context.reset()


def test_candles_resampled_to_5m(api):
    resp = api.get("/api/candles", params={"symbol": "BTCUSD-OTC", "timeframe": 300})
    assert resp.status_code == 200
    body = resp.json()
    assert [c["time"] for c in body["candles"]] == [1_710_000_000, 1_710_000_300]
    assert body["candles"][0] == {"time": 1_710_000_000, "open": 1.0, "high": 6.0, "low": 0.5, "close": 5.5}


def test_bad_timeframe_is_400_with_error_body(api):
    resp = api.get("/api/candles", params={"symbol": "BTCUSD-OTC", "timeframe": 90})
    assert resp.status_code == 400
    assert resp.json()["error"] == "invalid_timeframe"
