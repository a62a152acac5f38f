"""Given a running local stack found through its runtime file, and a user whose shell holds AWS
settings of their own (credentials, a session token, a per-service endpoint), when a CLI command
resolves its target, then its AWS clients go to the stack's emulator with the stack's
credentials only, and the process environment (which child processes inherit) is untouched."""

from __future__ import annotations

import json
import os

import pytest
from tradowix_bot.cli import target as targets
from tradowix_bot.server import aws

STACK_ENDPOINT = "http://127.0.0.1:45999"


@pytest.fixture
def running_stack(tmp_path, monkeypatch):
    (tmp_path / "local-stack.json").write_text(
        json.dumps(
            {
                "pid": os.getpid(),  # alive: this process
                "api_url": "http://127.0.0.1:45998",
                "endpoint_url": STACK_ENDPOINT,
                "aws_env": {
                    "AWS_ACCESS_KEY_ID": "stack-key",
                    "AWS_SECRET_ACCESS_KEY": "stack-secret",
                    "AWS_DEFAULT_REGION": "us-east-1",
                    "AWS_ENDPOINT_URL": STACK_ENDPOINT,
                },
                "candles_bucket": "candles",
                "keys_table": "keys",
                "state_table": "state",
            }
        )
    )
    for name in ("TRADOWIX_STACK", "KEYS_TABLE", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    # the user's own AWS settings, which must neither win nor mix with the stack's
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "user-key")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "user-secret")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "user-session-token")
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", "http://user-dynamodb.invalid:1")
    aws.reset()
    yield tmp_path
    aws.reset()


def test_the_stacks_endpoint_and_credentials_go_to_the_clients_not_the_environment(running_stack):
    environment_before = dict(os.environ)
    # when a CLI command finds the local stack
    target = targets.resolve(directory=running_stack)
    # then the environment is as it was
    assert dict(os.environ) == environment_before
    # and every client goes to the stack's emulator (the user's DynamoDB endpoint does not win)
    assert aws.client("s3").meta.endpoint_url == STACK_ENDPOINT
    assert aws.client("dynamodb").meta.endpoint_url == STACK_ENDPOINT
    assert aws.resource("dynamodb").meta.client.meta.endpoint_url == STACK_ENDPOINT
    # as the stack's principal, without the user's session token mixed in
    credentials = aws.credentials()
    assert (credentials.access_key, credentials.secret_key, credentials.token) == (
        "stack-key",
        "stack-secret",
        None,
    )
    assert aws.endpoint_url() == STACK_ENDPOINT  # the collector trims old days on an emulator
    assert (target.keys_table, target.candles_bucket) == ("keys", "candles")


def test_without_a_local_stack_the_environment_decides(running_stack):
    # given the stack's endpoint was used, and then forgotten (a new command, a test reset)
    targets.resolve(directory=running_stack)
    aws.use_endpoint(None)
    # then clients follow the user's environment again
    assert aws.client("dynamodb").meta.endpoint_url == "http://user-dynamodb.invalid:1"
    assert aws.credentials().access_key == "user-key"
    assert aws.endpoint_url() is None
