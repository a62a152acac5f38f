"""Given the partner API in a Lambda invocation with a 10 s timeout, when S3 or DynamoDB is slow,
then the partner gets the designed 503 with Retry-After before the function's time runs out,
never a Lambda timeout (API Gateway's bare 5xx): an AWS call attempt only starts while a whole
attempt (connect + read timeout) still fits in the invocation's remaining time. Time is driven
through the budget's clock, never slept."""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from urllib.parse import urlencode

import pytest
from unit_helpers import T0, load_event, synthetic_bars


@dataclass
class Invocation:
    remaining_ms: int
    function_name: str = "ApiFunction"
    aws_request_id: str = "req-budget"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:ApiFunction"

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


class FakeClock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch):
    from tradowix_bot.server import aws

    fake = FakeClock()
    monkeypatch.setattr(aws, "_clock", fake)
    return fake


@pytest.fixture
def seeded(api):
    from tradowix_bot.server.store import CandleStore

    CandleStore(api["CandlesBucket"]).write("GBPUSD-OTC", synthetic_bars(T0, 3 * 1440))
    return api


def candles(context) -> dict:
    from partner_api.app import handler

    event = copy.deepcopy(load_event("candles_get.json"))
    query = {"symbol": "GBPUSD-OTC", "limit": 10}
    event["rawQueryString"] = urlencode(query)
    event["queryStringParameters"] = {k: str(v) for k, v in query.items()}
    return handler(event, context)


def test_a_slow_first_call_leaves_no_time_for_the_next_and_the_answer_is_503(seeded, clock):
    from tradowix_bot.server import aws

    # given S3 that takes 6 s to list the symbol's days (on the budget's clock): the 10 s
    # invocation then has 3.5 s left to answer in, less than one more attempt may take (4 s)
    def slow_listing(**kwargs):
        if kwargs["event_name"].endswith("ListObjectsV2"):
            clock.now += 6.0

    aws.client("s3").meta.events.register("before-send.s3.ListObjectsV2", slow_listing)
    # when a partner asks for candles in an invocation with 10 s left
    answer = candles(Invocation(remaining_ms=10_000))
    # then the next S3 read is not started (a whole attempt no longer fits) and the partner
    # gets the designed 503, well before the function would time out
    assert answer["statusCode"] == 503
    assert json.loads(answer["body"])["error"] == "unavailable"
    assert int(answer["headers"]["retry-after"]) > 0


def test_with_too_little_time_left_no_call_is_attempted(seeded, clock):
    from tradowix_bot.server import aws

    sent = []
    aws.client("s3").meta.events.register("before-send", lambda **kw: sent.append(kw["event_name"]))
    answer = candles(Invocation(remaining_ms=int((aws.ATTEMPT_SECONDS - 1) * 1000)))
    assert answer["statusCode"] == 503
    assert sent == []


def test_with_time_to_spare_the_answer_is_served(seeded, clock):
    answer = candles(Invocation(remaining_ms=10_000))
    assert answer["statusCode"] == 200
    assert json.loads(answer["body"])["count"] == 10


def test_the_budget_fits_the_function_timeout_in_the_template():
    """Each attempt is bounded by the client's timeouts; one attempt must fit the function's
    timeout with room to answer, or no request could ever be served."""
    from tradowix_bot.server import aws
    from tradowix_local.template import Template

    for fn in Template().functions().values():
        assert aws.ATTEMPT_SECONDS + aws.ANSWER_RESERVE_SECONDS < fn.timeout, fn.logical_id
