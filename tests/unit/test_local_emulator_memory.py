"""Given the local stack's embedded emulator (moto), when records come and go as WebSocket
partners do (connect, subscribe, leave), then what was deleted does not stay in memory: the
stack's size follows what it holds, not how much traffic it ever had (issue 16, memory)."""

from __future__ import annotations

import gc
import uuid

import pytest
from local_emulator import embedded_emulator


@pytest.fixture(scope="module")
def connections():
    with embedded_emulator() as stack:
        yield stack.emulator.client("dynamodb"), stack.names["ConnectionsTable"]


def moto_table(name: str):
    from moto.dynamodb.models import dynamodb_backends

    for region in dynamodb_backends.values():
        for backend in region.values():
            if name in backend.tables:
                return backend.tables[name]
    raise AssertionError(f"no table {name}")


def come_and_go(client, table: str, marker: str, partners: int) -> list[str]:
    """What a partner leaves in the connections table: a record, a subscription, reads of both,
    then the $disconnect's deletes (and a read of the gone connection, as a late post does)."""
    ids = [f"{marker}-{i}" for i in range(partners)]
    for cid in ids:
        for sk in ("meta", "sub#EURUSD-OTC#60"):
            client.put_item(
                TableName=table,
                Item={"connection_id": {"S": cid}, "sk": {"S": sk}, "symbol": {"S": "EURUSD-OTC"}},
            )
        client.get_item(TableName=table, Key={"connection_id": {"S": cid}, "sk": {"S": "meta"}})
        client.query(
            TableName=table,
            KeyConditionExpression="connection_id = :c",
            ExpressionAttributeValues={":c": {"S": cid}},
        )
    for cid in ids:
        for sk in ("meta", "sub#EURUSD-OTC#60"):
            client.delete_item(TableName=table, Key={"connection_id": {"S": cid}, "sk": {"S": sk}})
        client.get_item(TableName=table, Key={"connection_id": {"S": cid}, "sk": {"S": "meta"}})
    return ids


def test_deleted_connections_leave_no_partition_behind(connections):
    client, table = connections
    # given 50 partners who came and went
    ids = come_and_go(client, table, uuid.uuid4().hex, 50)
    # then the table holds no entry for any of their ids (moto kept an empty one per id)
    held = {key.value for key in moto_table(table).items}
    assert held.isdisjoint(ids)
    # and a partner who is still connected is still there, whole
    client.put_item(TableName=table, Item={"connection_id": {"S": "still-here"}, "sk": {"S": "meta"}})
    client.put_item(TableName=table, Item={"connection_id": {"S": "still-here"}, "sk": {"S": "sub#X#60"}})
    client.delete_item(TableName=table, Key={"connection_id": {"S": "still-here"}, "sk": {"S": "sub#X#60"}})
    answer = client.query(
        TableName=table,
        KeyConditionExpression="connection_id = :c",
        ExpressionAttributeValues={":c": {"S": "still-here"}},
    )
    assert [i["sk"]["S"] for i in answer["Items"]] == ["meta"]


def test_deleted_and_read_items_are_not_kept_in_memory(connections):
    from moto.dynamodb.models.dynamo_type import Item

    client, table = connections
    marker = uuid.uuid4().hex
    # given 50 partners who came and went (each record written, read and deleted)
    come_and_go(client, table, marker, 50)
    # when the garbage is collected
    gc.collect()
    # then no copy of their records is alive (moto had kept every item it ever made)
    alive = [
        o
        for o in gc.get_objects()
        if isinstance(o, Item) and str(getattr(o.attrs.get("connection_id"), "value", "")).startswith(marker)
    ]
    assert alive == []
