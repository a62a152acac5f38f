"""Given the local stack's embedded emulator (moto), when it answers DynamoDB reads of many
items (the live publisher's key check scans every connection every 10 s), then it answers the
same bytes as moto's own serializer, without its per-attribute walk (which held the stack's GIL
for most of a second at 1,000 connections, issue 16)."""

from __future__ import annotations

import pytest
from local_emulator import embedded_emulator

EVERY_TYPE = {
    "connection_id": {"S": "c-every-type"},
    "sk": {"S": "meta"},
    "text": {"S": 'héllo "quoted" \\ / \u2603'},
    "empty": {"S": ""},
    "number": {"N": "-12.500"},
    "big": {"N": "123456789012345678901234567890"},
    "blob": {"B": b"\x00\xffbinary"},
    "flag": {"BOOL": False},
    "nothing": {"NULL": True},
    "strings": {"SS": ["a", "b"]},
    "numbers": {"NS": ["1", "2.5"]},
    "blobs": {"BS": [b"\x01", b"\x02\x03"]},
    "list": {"L": [{"S": "x"}, {"N": "1"}, {"M": {"deep": {"L": [{"B": b"\x04"}, {"NULL": True}]}}}]},
    "map": {"M": {"a": {"S": "1"}, "b": {"BOOL": True}, "c": {"M": {}}, "d": {"L": []}}},
}


@pytest.fixture(scope="module")
def table():
    with embedded_emulator() as stack:
        client = stack.emulator.client("dynamodb")
        name = stack.names["ConnectionsTable"]
        client.put_item(TableName=name, Item=EVERY_TYPE)
        yield client, name


def raw_answers(client, calls) -> list[bytes]:
    bodies: list[bytes] = []

    def keep(http_response, **_):
        bodies.append(http_response.content)

    client.meta.events.register("after-call.dynamodb", keep)
    try:
        for call in calls:
            call()
    finally:
        client.meta.events.unregister("after-call.dynamodb", keep)
    return bodies


def test_items_of_every_attribute_type_are_answered_byte_for_byte_as_moto_answers_them(table, monkeypatch):
    from moto.core.serialize import BaseJSONSerializer
    from tradowix_local import moto_speed

    # given an item with every attribute type (nested maps and lists, blobs, sets, NULL, BOOL)
    client, name = table
    key = {"connection_id": EVERY_TYPE["connection_id"], "sk": EVERY_TYPE["sk"]}
    calls = [
        lambda: client.scan(TableName=name),
        lambda: client.get_item(TableName=name, Key=key, ConsistentRead=True),
        lambda: client.query(
            TableName=name,
            KeyConditionExpression="connection_id = :c",
            ExpressionAttributeValues={":c": EVERY_TYPE["connection_id"]},
        ),
        lambda: client.batch_get_item(RequestItems={name: {"Keys": [key]}}),
        lambda: client.update_item(
            TableName=name,
            Key=key,
            UpdateExpression="SET flag = :f",
            ExpressionAttributeValues={":f": {"BOOL": False}},
            ReturnValues="ALL_NEW",
        ),
    ]
    assert moto_speed._generic is not None  # the emulator's start switched the shortcut on
    # when the emulator answers reads of it with the shortcut, and with moto's own serializer
    fast = raw_answers(client, calls)
    monkeypatch.setattr(BaseJSONSerializer, "_serialize_type_structure", moto_speed._generic)
    generic = raw_answers(client, calls)
    # then the answers are the same bytes, and the client reads back what was written
    assert fast == generic
    assert client.get_item(TableName=name, Key=key)["Item"] == EVERY_TYPE


def test_a_query_and_a_scan_list_items_in_moto_s_own_key_order(table, monkeypatch):
    from moto.dynamodb.models.table import Table
    from tradowix_local import moto_speed

    # given items whose keys sort differently as text and as numbers, in a table with a sort key
    client, name = table
    for cid in ("q-10", "q-9", "q-1"):
        for sk in ("sub#B#60", "meta", "sub#A#300", "sub#A#60"):
            item = {"connection_id": {"S": cid}, "sk": {"S": sk}}
            if sk.startswith("sub#A"):
                item |= {"symbol": {"S": "EURUSD-OTC"}, "timeframe": {"N": sk.rpartition("#")[2]}}
            client.put_item(TableName=name, Item=item)

    def answers():
        return [
            client.query(
                TableName=name,
                KeyConditionExpression="connection_id = :c",
                ExpressionAttributeValues={":c": {"S": "q-10"}},
            )["Items"],
            client.query(
                TableName=name,
                KeyConditionExpression="connection_id = :c AND begins_with(sk, :s)",
                ExpressionAttributeValues={":c": {"S": "q-9"}, ":s": {"S": "sub#"}},
                ScanIndexForward=False,
            )["Items"],
            client.scan(TableName=name, Limit=7)["Items"],
            client.query(  # a partition that does not exist
                TableName=name,
                KeyConditionExpression="connection_id = :c",
                ExpressionAttributeValues={":c": {"S": "q-none"}},
            )["Items"],
            client.query(  # an index: every item, as before
                TableName=name,
                IndexName="by_symbol",
                KeyConditionExpression="symbol = :s",
                ExpressionAttributeValues={":s": {"S": "EURUSD-OTC"}},
            )["Items"],
        ]

    # when they are listed with the native sort key (a Query: its partition only), and with moto's own
    fast = answers()
    monkeypatch.setattr(Table, "all_items", moto_speed._generic_all_items)
    monkeypatch.setattr(Table, "query", moto_speed._generic_query)
    generic = answers()
    # then in the same order
    assert fast == generic
    assert [i["sk"]["S"] for i in fast[0]] == ["meta", "sub#A#300", "sub#A#60", "sub#B#60"]
