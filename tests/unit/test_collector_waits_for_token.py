"""Given the collector container's set-up on a fresh deployment (the session-token parameter
does not exist yet), when it starts, then it does not exit (ECS would restart it forever and
CloudFormation wait hours): its status record says it waits for a token, and once the owner
stores one it connects without a restart."""

from __future__ import annotations

import argparse
import asyncio
import functools
import time

import boto3
import pytest
from unit_helpers import run_async

PARAMETER = "/tradowix/session-token"


@pytest.fixture
def container_env(aws_env, monkeypatch, tmp_path):
    """What the task definition gives the collector: a token parameter, no token anywhere else."""
    monkeypatch.delenv("TRADOWIX_SESSION_TOKEN", raising=False)
    monkeypatch.setenv("TRADOWIX_TOKEN_PARAMETER", PARAMETER)
    monkeypatch.setenv("TRADOWIX_DATA_DIR", str(tmp_path))
    return aws_env


def test_the_container_command_builds_a_source_that_waits_instead_of_exiting(container_env, upstream):
    from tradowix_bot.cli.collect_cmd import build_source
    from tradowix_bot.collector import Clock
    from tradowix_bot.collector.tradowix import TradowixSource

    # given the container's arguments (--source tradowix) and no parameter in SSM
    args = argparse.Namespace(source="tradowix", token=None, url=upstream.url, replay_dir=None)
    # when the command builds its source, then it neither exits nor raises
    source = build_source(args, Clock(1.0))
    assert isinstance(source, TradowixSource)


def test_status_says_it_waits_and_a_stored_token_is_picked_up(container_env, upstream):
    from tradowix_bot.collector import Clock, Collector
    from tradowix_bot.collector.token import load_token
    from tradowix_bot.collector.tradowix import TradowixSource
    from tradowix_bot.server.state import StateStore
    from tradowix_bot.server.store import CandleStore

    clock = Clock(30.0)
    state = StateStore(container_env["StateTable"])
    source = TradowixSource(
        upstream.url,
        None,
        clock,
        reload_token=functools.partial(load_token, None),
        token_recheck_seconds=0.2,
    )
    collector = Collector(
        source,
        CandleStore(container_env["CandlesBucket"]),
        state,
        symbols=["BTCUSD-OTC"],
        clock=clock,
        backfill_days=5 / 1440,
        status_interval=0.2,
        auth_backoff=60.0,
    )

    async def scenario() -> tuple[dict, dict]:
        stop = asyncio.Event()
        task = asyncio.create_task(collector.run(stop))
        waiting = await poll(state, lambda st: st.get("last_error"))
        assert not task.done()  # still running: no exit on a missing token
        boto3.client("ssm").put_parameter(Name=PARAMETER, Value="good-token", Type="SecureString")
        linked = await poll(state, lambda st: st.get("authenticated"))
        stop.set()
        await asyncio.wait_for(task, 20)
        return waiting, linked

    waiting, linked = run_async(scenario())
    assert "no Tradowix session token is stored yet" in waiting["last_error"]
    assert waiting["authenticated"] is False
    assert linked["authenticated"] is True and linked["last_error"] is None


async def poll(state, holds, timeout: float = 15.0) -> dict:
    """The status record once `holds(status)` (read in a thread: boto3 blocks)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = await asyncio.to_thread(state.upstream_status) or {}
        if holds(status):
            return status
        await asyncio.sleep(0.1)
    raise AssertionError(f"the collector's status never got there: {status}")
