"""Given the product's cached boto3 clients used from several threads at once (the collector
acquires leases for a batch of symbols in parallel), when their first expected AWS errors
(a lease someone else holds: ConditionalCheckFailed) happen at the same moment in those
threads, then each is handled as that error — none escapes as an unknown exception.

botocore makes a client's exception classes on first use, without a lock: two threads could each
make their own set, and an `except client.exceptions.X` written in one thread then named a class
the other thread's raise did not use (a collector crashed this way in a three-collector run)."""

from __future__ import annotations

import itertools
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import botocore.client
import botocore.errorfactory
import botocore.exceptions


def test_first_conditional_failures_in_parallel_threads_are_all_handled(aws_env, monkeypatch):
    from tradowix_bot.server import aws
    from tradowix_bot.server.state import StateStore

    # given a lease held by another collector
    state = StateStore(aws_env["StateTable"])
    assert state.acquire_lease("BTCUSD-OTC", "other", 60, now=1000.0)
    aws.reset()  # fresh clients: their exception classes are not made yet
    # On a busy machine threads meet inside botocore's unlocked first-use step and a thread is
    # often paused between a raise and its `except`: both made long here, so that they always do.
    made = itertools.count()
    make = botocore.errorfactory.ClientExceptionsFactory._create_client_exceptions
    call = botocore.client.BaseClient._make_api_call

    def slow_make(self, service_model):
        time.sleep(0.03 * next(made))
        return make(self, service_model)

    def paused_raise(self, *args, **kwargs):
        try:
            return call(self, *args, **kwargs)
        except botocore.exceptions.ClientError:
            time.sleep(0.1)
            raise

    factory = botocore.errorfactory.ClientExceptionsFactory
    monkeypatch.setattr(factory, "_create_client_exceptions", slow_make)
    monkeypatch.setattr(
        factory, "create_client_exceptions", lambda self, model: self._create_client_exceptions(model)
    )
    monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", paused_raise)
    start = threading.Barrier(8)

    def try_to_take() -> bool:
        start.wait()
        return state.acquire_lease("BTCUSD-OTC", "me", 60, now=1001.0)

    # when eight threads try to take it at once, then each is told no
    with ThreadPoolExecutor(8) as pool:
        answers = [f.result() for f in [pool.submit(try_to_take) for _ in range(8)]]
    assert answers == [False] * 8
