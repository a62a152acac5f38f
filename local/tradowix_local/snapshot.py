"""Persistence for the embedded emulator: moto keeps everything in memory, so the stack saves
every bucket and table of the template to the data directory (periodically and on shutdown)
and loads them at start. Files are written to a temporary folder and swapped in whole, so a
crash mid-save leaves the previous snapshot intact."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from urllib.parse import quote, unquote

from .emulator import Emulator

# Connections die with the stack (their sockets close): saving them would only bring back
# ghosts, and scanning a thousand of them every 30 s stalls the gateways (moto shares the process).
NOT_SAVED = frozenset({"ConnectionsTable"})


def save(emulator: Emulator, names: dict[str, str], kinds: dict[str, str], directory: Path) -> None:
    """Objects whose ETag is unchanged since the last snapshot are linked from it, not read
    again: only today's day objects change, and each GET costs the stack's CPU."""
    tmp = directory.with_name(directory.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    s3 = emulator.client("s3")
    ddb = emulator.client("dynamodb")
    for logical_id, name in names.items():
        if logical_id in NOT_SAVED:
            continue
        if kinds[logical_id] == "bucket":
            folder = tmp / "s3" / logical_id
            folder.mkdir(parents=True)
            previous = directory / "s3" / logical_id
            for page in s3.get_paginator("list_objects_v2").paginate(Bucket=name):
                for obj in page.get("Contents", []):
                    filename = quote(obj["Key"], safe="")
                    path, meta_path = folder / filename, folder / (filename + ".meta")
                    if _link_unchanged(previous / filename, obj["ETag"], path):
                        continue
                    got = s3.get_object(Bucket=name, Key=obj["Key"])
                    meta = {k: got[k] for k in ("ContentType", "ContentEncoding") if got.get(k)}
                    path.write_bytes(got["Body"].read())
                    meta_path.write_text(json.dumps({**meta, "ETag": got["ETag"]}))
        else:
            items = []
            for page in ddb.get_paginator("scan").paginate(TableName=name):
                items.extend(page.get("Items", []))
            (tmp / "dynamodb").mkdir(exist_ok=True)
            (tmp / "dynamodb" / f"{logical_id}.json").write_text(json.dumps(items))
    old = directory.with_name(directory.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if directory.exists():
        directory.rename(old)
    tmp.rename(directory)
    shutil.rmtree(old, ignore_errors=True)


def _link_unchanged(previous: Path, etag: str, path: Path) -> bool:
    """Reuse the last snapshot's copy of an object (data and meta) if its ETag is the same."""
    previous_meta = previous.with_name(previous.name + ".meta")
    try:
        if json.loads(previous_meta.read_text()).get("ETag") != etag:
            return False
        for source, target in ((previous, path), (previous_meta, path.with_name(path.name + ".meta"))):
            try:
                os.link(source, target)  # the old snapshot is deleted after the swap; links survive
            except OSError:
                shutil.copyfile(source, target)
    except (OSError, ValueError):
        return False
    return True


def restore(emulator: Emulator, names: dict[str, str], directory: Path) -> int:
    """Load a snapshot into freshly created resources. Returns how many records were loaded."""
    if not directory.exists():
        return 0
    count = 0
    s3 = emulator.client("s3")
    for folder in (directory / "s3").glob("*"):
        if folder.name not in names:
            continue
        for path in folder.iterdir():
            if path.name.endswith(".meta"):
                continue
            meta_path = path.with_name(path.name + ".meta")
            meta = json.loads(meta_path.read_text()) if meta_path.exists() else {}
            meta.pop("ETag", None)  # moto computes it again from the same bytes
            s3.put_object(Bucket=names[folder.name], Key=unquote(path.name), Body=path.read_bytes(), **meta)
            count += 1
    ddb = emulator.client("dynamodb")
    for path in (directory / "dynamodb").glob("*.json"):
        logical_id = path.stem
        if logical_id not in names or logical_id in NOT_SAVED:  # (snapshots before NOT_SAVED)
            continue
        items = json.loads(path.read_text())
        for i in range(0, len(items), 25):
            batch = [{"PutRequest": {"Item": item}} for item in items[i : i + 25]]
            ddb.batch_write_item(RequestItems={names[logical_id]: batch})
        count += len(items)
    return count
