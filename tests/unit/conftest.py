"""Unit-test fixtures: a seeded in-process moto behind the partner API, and an admin registry."""

from __future__ import annotations

import pytest
from unit_helpers import T0, synthetic_bars


@pytest.fixture
def api(aws_env):
    """The partner API on in-process moto with 2 days of BTCUSD-OTC 1m bars (fresh caches)."""
    from partner_api import context
    from tradowix_bot.store import CandleStore

    context.reset()
    store = CandleStore(aws_env["CandlesBucket"])
    store.write("BTCUSD-OTC", synthetic_bars(T0, 2 * 1440))
    store.write("EURUSD-OTC", synthetic_bars(T0, 60))
    yield aws_env
    context.reset()


@pytest.fixture
def admin(api):
    """A separate KeyRegistry, as the CLI would use: the API's cache does not see its writes at once."""
    from tradowix_bot.keys import KeyRegistry

    return KeyRegistry(api["KeysTable"])


@pytest.fixture
def upstream():
    """A stand-in Tradowix upstream on 127.0.0.1 whose clock runs 30x (minutes in seconds)."""
    from tradowix_bot.collector import Clock
    from upstream_standin import StandinUpstream

    server = StandinUpstream(Clock(30.0)).start()
    yield server
    server.stop()
