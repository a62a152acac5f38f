"""Persistence for the embedded emulator: moto keeps everything in memory, so the stack saves
every bucket and table of the template to the data directory (periodically and on shutdown)
and loads them at start. Files are written to a temporary folder and swapped in whole, so a
crash mid-save leaves the previous snapshot intact."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from urllib.parse import quote, unquote

from .emulator import Emulator


def save(emulator: Emulator, names: dict[str, str], kinds: dict[str, str], directory: Path) -> None:
    tmp = directory.with_name(directory.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    s3 = emulator.client("s3")
    ddb = emulator.client("dynamodb")
    for logical_id, name in names.items():
        if kinds[logical_id] == "bucket":
            folder = tmp / "s3" / logical_id
            folder.mkdir(parents=True)
            for page in s3.get_paginator("list_objects_v2").paginate(Bucket=name):
                for obj in page.get("Contents", []):
                    got = s3.get_object(Bucket=name, Key=obj["Key"])
                    meta = {k: got[k] for k in ("ContentType", "ContentEncoding") if got.get(k)}
                    path = folder / quote(obj["Key"], safe="")
                    path.write_bytes(got["Body"].read())
                    path.with_name(path.name + ".meta").write_text(json.dumps(meta))
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
            s3.put_object(Bucket=names[folder.name], Key=unquote(path.name), Body=path.read_bytes(), **meta)
            count += 1
    ddb = emulator.client("dynamodb")
    for path in (directory / "dynamodb").glob("*.json"):
        logical_id = path.stem
        if logical_id not in names:
            continue
        items = json.loads(path.read_text())
        for i in range(0, len(items), 25):
            batch = [{"PutRequest": {"Item": item}} for item in items[i : i + 25]]
            ddb.batch_write_item(RequestItems={names[logical_id]: batch})
        count += len(items)
    return count
