"""Given a local stack started from the CLI, when a partner uses curl-like calls, then it answers."""

from __future__ import annotations

import httpx
import pytest

pytestmark = pytest.mark.integration


def test_open_mode_then_key_required(local_stack):
    # given: no key -> open
    local_stack.delete_all_keys()
    local_stack.wait_open_mode()
    r = httpx.get(local_stack.api_url + "/api/candles", params={"symbol": "BTCUSD-OTC", "limit": 5})
    assert r.status_code == 200 and r.json()["count"] == 5
    # when: a key is created with the CLI
    key_id, raw = local_stack.create_key("smoke")
    assert raw.startswith("twk_") and key_id.startswith("key_")
    # then: the key works and its absence is refused (after the cache bound)
    r = httpx.get(
        local_stack.api_url + "/api/candles",
        params={"symbol": "BTCUSD-OTC", "limit": 5},
        headers={"X-Api-Key": raw},
    )
    assert r.status_code == 200
    local_stack.cli("keys", "delete", key_id)
