"""Unit-test fixtures: a seeded in-process moto behind the partner API, and an admin registry."""

from __future__ import annotations

import asyncio

import pytest
from unit_helpers import T0, synthetic_bars


@pytest.fixture(autouse=True)
def _an_event_loop_as_lambdas_thread_has():
    """Lambda's runtime thread always has an event loop (Mangum runs the app on it). An earlier
    test of the same process that ran asyncio.run() leaves the main thread without one, so a
    test calling a handler directly would fail depending on which tests ran before it."""
    try:
        asyncio.get_event_loop_policy().get_event_loop()
    except RuntimeError:
        asyncio.set_event_loop(asyncio.new_event_loop())


# What the `api` fixture stores: 2 days of BTCUSD-OTC 1m bars and an hour of EURUSD-OTC.
API_SEED = {"BTCUSD-OTC": synthetic_bars(T0, 2 * 1440), "EURUSD-OTC": synthetic_bars(T0, 60)}


@pytest.fixture(scope="session")
def api_seed_objects() -> list[dict]:
    """The S3 objects of API_SEED as the real CandleStore writes them (its format), made once:
    each `api` test puts these few objects back instead of encoding two days of bars again."""
    from moto import mock_aws
    from tradowix_bot.server import aws
    from tradowix_bot.server.store import CandleStore

    bucket = "seed"
    with mock_aws():
        aws.reset()
        s3 = aws.client("s3")
        s3.create_bucket(Bucket=bucket)
        store = CandleStore(bucket)
        for symbol, bars in API_SEED.items():
            store.write(symbol, bars)
        objects = []
        for listed in s3.list_objects_v2(Bucket=bucket)["Contents"]:
            got = s3.get_object(Bucket=bucket, Key=listed["Key"])
            put = {"Key": listed["Key"], "Body": got["Body"].read(), "Metadata": got.get("Metadata", {})}
            for attribute in ("ContentType", "ContentEncoding", "CacheControl"):
                if got.get(attribute):
                    put[attribute] = got[attribute]
            objects.append(put)
    aws.reset()
    return objects


@pytest.fixture
def api(aws_env, api_seed_objects):
    """The partner API on in-process moto with API_SEED stored (fresh caches)."""
    from partner_api import context
    from tradowix_bot.server import aws

    context.reset()
    s3 = aws.client("s3")
    for put in api_seed_objects:
        s3.put_object(Bucket=aws_env["CandlesBucket"], **put)
    yield aws_env
    context.reset()


@pytest.fixture
def admin(api):
    """A separate KeyRegistry, as the CLI would use: the API's cache does not see its writes at once."""
    from tradowix_bot.server.keys import KeyRegistry

    return KeyRegistry(api["KeysTable"])


@pytest.fixture
def upstream():
    """A stand-in Tradowix upstream on 127.0.0.1 whose clock runs 30x (minutes in seconds)."""
    from tradowix_bot.collector import Clock
    from upstream_standin import StandinUpstream

    server = StandinUpstream(Clock(30.0)).start()
    yield server
    server.stop()
