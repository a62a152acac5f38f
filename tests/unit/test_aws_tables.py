"""Given the stores behind the API and WebSocket functions and the publisher, when they serve
many requests, then boto3 builds each DynamoDB Table resource once per principal, not once per
request.

boto3 makes a new class for every `resource.Table(name)` (0.36 ms of CPU here and ~1,000 objects
in reference cycles). Made per request, the local stack's garbage collector spent 250-300 ms per
full pass freeing them, and each pass stalled every WebSocket client's bar (issue 16); on AWS it
is CPU every invocation pays."""

from __future__ import annotations

import boto3.resources.factory


def count_table_classes(monkeypatch) -> list[str]:
    made: list[str] = []
    load = boto3.resources.factory.ResourceFactory.load_from_definition

    def counting(self, resource_name, *args, **kwargs):
        if resource_name == "Table":
            made.append(resource_name)
        return load(self, resource_name, *args, **kwargs)

    monkeypatch.setattr(boto3.resources.factory.ResourceFactory, "load_from_definition", counting)
    return made


def test_stores_build_each_table_once_however_many_requests(aws_env, monkeypatch):
    from tradowix_bot.server.keys import KeyRegistry
    from tradowix_bot.server.live_connections import ConnectionStore
    from tradowix_bot.server.ratelimit import RateLimiter
    from tradowix_bot.server.state import StateStore

    made = count_table_classes(monkeypatch)
    keys = KeyRegistry(aws_env["KeysTable"], cache_seconds=0)
    connections = ConnectionStore(aws_env["ConnectionsTable"])
    state = StateStore(aws_env["StateTable"])
    limiter = RateLimiter(aws_env["StateTable"])

    # when each store serves many requests
    record, _ = keys.create("bot")
    for n in range(20):
        keys.get(record.key_id)
        connections.add_connection(f"c{n}", record.key_id)
        connections.get(f"c{n}")
        state.put("p", "s", {"n": n})
        limiter.hit(record.key_id)

    # then each table was built once (the keys table, the connections table, the state table
    # for the state store and the rate limiter)
    assert len(made) == 3


def test_each_principal_has_its_own_table_with_its_own_credentials(aws_env):
    from tradowix_bot.server import aws

    # given two functions' roles (the local stack runs them in one process)
    with aws.acting_as("AKIAFUNCTIONONE00001", "one"):
        first = aws.table(aws_env["KeysTable"])
        assert aws.table(aws_env["KeysTable"]) is first  # when asked again: the same table
    with aws.acting_as("AKIAFUNCTIONTWO00002", "two"):
        second = aws.table(aws_env["KeysTable"])

    # then each signs with its own role's credentials
    assert second is not first
    assert first.meta.client._request_signer._credentials.access_key == "AKIAFUNCTIONONE00001"
    assert second.meta.client._request_signer._credentials.access_key == "AKIAFUNCTIONTWO00002"


def test_a_new_endpoint_gets_new_tables(aws_env):
    from tradowix_bot.server import aws

    # given a table made for this endpoint
    before = aws.table(aws_env["KeysTable"])
    # when the process switches endpoints (tests, the CLI pointing at a local stack)
    aws.reset()
    # then the next table belongs to the new resource
    after = aws.table(aws_env["KeysTable"])
    assert after is not before
    assert after.meta.client is aws.resource("dynamodb").meta.client
