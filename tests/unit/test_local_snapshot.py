"""Given the embedded emulator's buckets and tables, when the local stack snapshots them, then
a restart gets the same objects and records back, objects that did not change are not read
again, and WebSocket connections (which die with the stack) are not brought back as ghosts."""

from __future__ import annotations

import boto3
from tradowix_local.journal import Journal
from tradowix_local.snapshot import restore, save


class CountingEmulator:
    """The emulator's surface `save`/`restore` use, counting S3 GETs."""

    def __init__(self):
        self.gets = 0

    def client(self, service):
        client = boto3.client(service)
        if service == "s3":
            client.meta.events.register("before-call.s3.GetObject", self._count)
        return client

    def _count(self, **_):
        self.gets += 1


def test_snapshot_restores_data_rereads_only_changed_objects_and_drops_connections(aws_env, tmp_path):
    # given a bucket with two day objects, a key record and an open WebSocket connection
    bucket = aws_env["CandlesBucket"]
    s3, ddb = boto3.client("s3"), boto3.client("dynamodb")
    s3.put_object(Bucket=bucket, Key="candles/1m/A/2026-11-24.json.gz", Body=b"old day", ContentType="x/y")
    s3.put_object(Bucket=bucket, Key="candles/1m/A/2026-11-25.json.gz", Body=b"today v1")
    ddb.put_item(TableName=aws_env["KeysTable"], Item={"key_id": {"S": "key_1"}, "name": {"S": "partner"}})
    ddb.put_item(
        TableName=aws_env["ConnectionsTable"], Item={"connection_id": {"S": "c1"}, "sk": {"S": "meta"}}
    )
    names = {k: v for k, v in aws_env.items() if k.endswith(("Bucket", "Table"))}
    kinds = {k: "bucket" if k.endswith("Bucket") else "table" for k in names}
    emulator = CountingEmulator()
    snapshot, journal = tmp_path / "snapshot", Journal(tmp_path / "journal")
    save(emulator, names, kinds, snapshot, journal)
    assert emulator.gets == 2
    # when only today's object changes and the stack snapshots again
    s3.put_object(Bucket=bucket, Key="candles/1m/A/2026-11-25.json.gz", Body=b"today v2")
    emulator.gets = 0
    save(emulator, names, kinds, snapshot, journal)
    # then only that object was read again
    assert emulator.gets == 1
    # and after a restart (empty resources) the data is back, the connection is not
    for key in ("candles/1m/A/2026-11-24.json.gz", "candles/1m/A/2026-11-25.json.gz"):
        s3.delete_object(Bucket=bucket, Key=key)
    ddb.delete_item(TableName=aws_env["KeysTable"], Key={"key_id": {"S": "key_1"}})
    ddb.delete_item(
        TableName=aws_env["ConnectionsTable"], Key={"connection_id": {"S": "c1"}, "sk": {"S": "meta"}}
    )
    journal.close()
    restore(emulator, names, kinds, snapshot, journal.directory)
    old = s3.get_object(Bucket=bucket, Key="candles/1m/A/2026-11-24.json.gz")
    assert old["Body"].read() == b"old day" and old["ContentType"] == "x/y"
    assert s3.get_object(Bucket=bucket, Key="candles/1m/A/2026-11-25.json.gz")["Body"].read() == b"today v2"
    assert ddb.scan(TableName=aws_env["KeysTable"])["Count"] == 1
    assert ddb.scan(TableName=aws_env["ConnectionsTable"])["Count"] == 0
