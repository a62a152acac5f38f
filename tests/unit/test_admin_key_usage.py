"""Given keys that made requests this minute (through the API handler, on in-process moto), when
the owner lists the keys, then each key says how much of its rate limit it used this minute."""

from __future__ import annotations

import json
import os

import boto3
import pytest
from unit_helpers import get, invoke

ADMIN_SECRET = "owner-secret-for-usage"


@pytest.fixture
def admin_cookie(api):
    boto3.client("ssm").put_parameter(
        Name=os.environ["ADMIN_SECRET_PARAMETER"], Value=ADMIN_SECRET, Type="SecureString", Overwrite=True
    )
    answer = invoke(
        "verify_post.json", path="/api/admin/login", body=json.dumps({"secret": ADMIN_SECRET}), cookies=[]
    )
    assert answer.status == 200, answer.body
    return answer.cookies[0].split(";")[0]


def test_each_key_shows_what_it_used_of_its_limit_this_minute(api, admin, admin_cookie):
    from partner_api import context

    context.services.rate_limiter()._clock = lambda: 1_796_000_010.0  # mid-minute, fixed: no window change
    # given a busy key on a limit of its own, and a quiet key on the default
    busy, busy_raw = admin.create("busy bot", rate_limit=50)
    quiet, _ = admin.create("quiet bot")
    for _ in range(3):
        assert get("/api/symbols", headers={"X-Api-Key": busy_raw}).status == 200
    # when the owner lists the keys
    answer = invoke("symbols_get_cookie.json", path="/api/admin/keys", cookies=[admin_cookie])
    assert answer.status == 200, answer.body
    usage = {k["key_id"]: k["usage"] for k in answer.json()["keys"]}
    # then each says how much of its limit it used this minute, and when the minute ends
    assert usage[busy.key_id]["used"] == 3 and usage[busy.key_id]["limit"] == 50
    default = int(os.environ.get("RATE_LIMIT_PER_MINUTE", 600))
    assert usage[quiet.key_id] == {
        "used": 0,
        "limit": default,
        "reset_seconds": usage[quiet.key_id]["reset_seconds"],
    }
    assert usage[quiet.key_id]["reset_seconds"] == 30
