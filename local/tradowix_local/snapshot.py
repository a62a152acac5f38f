"""Persistence for the embedded emulator: moto keeps everything in memory, so the stack saves
every bucket, table and SSM parameter to the data directory (every 30 s and on shutdown), and
journals every table and parameter write in between (journal.py). At start: the last snapshot,
then the journal written after it.

Layout (all 0700 directories and 0600 files):

    emulator-snapshot/CURRENT            the committed snapshot's number, e.g. "000042"
    emulator-snapshot/000042/manifest.json   what the snapshot holds (tables, item counts, ...)
    emulator-snapshot/000042/dynamodb/<LogicalId>.json, ssm.json, s3/<LogicalId>/<object>(.meta)
    emulator-journal/000042.log, 000043.log  writes since snapshot 000042, in order

A save writes a new numbered folder, syncs it, then replaces CURRENT: one atomic rename is the
commit, so a crash at any moment leaves the previous snapshot and its journal whole. Nothing is
guessed at start: a snapshot that CURRENT names must be complete (its manifest says what it
holds); a missing or damaged file is a one-line error naming it, never an empty (open) key table.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, unquote

from .emulator import Emulator
from .journal import (
    Journal,
    StateFileError,
    drop_torn_tail,
    fsync_directory,
    read_entries,
    replay,
    segment_number,
    segments,
)

# Connections die with the stack (their sockets close): saving them would only bring back
# ghosts, and scanning a thousand of them every 30 s stalls the gateways (moto shares the process).
NOT_SAVED = frozenset({"ConnectionsTable"})
FORMAT = 2
CURRENT = "CURRENT"
MANIFEST = "manifest.json"
_NUMBER = re.compile(r"^\d{6}$")
# Before FORMAT 2: one folder swapped by two renames, parameters beside it.
LEGACY_PARAMETERS = "ssm-parameters.json"

_DAMAGED = "the local stack's saved state is damaged: restore the data directory from a backup, or move it aside to start empty"


@dataclass
class Restored:
    records: int = 0  # objects, items and parameters loaded from the snapshot
    replayed: int = 0  # journal entries applied after it
    torn: bool = False  # the newest journal segment ended in a half-written entry (dropped)
    legacy: bool = False  # an older layout was read (the next save converts it)
    first: bool = False  # nothing was saved before: a first start
    next_segment: int = 1  # where the journal continues


# -- writing ---------------------------------------------------------------------------------------
def _write_file(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)


def _mkdir(path: Path) -> None:
    """Create `path` and any missing parent 0700 (mkdir's `mode` applies to the last one only)."""
    for folder in [*reversed(path.parents), path]:
        if not folder.exists():
            folder.mkdir(mode=0o700, exist_ok=True)


def _scan(ddb, table: str) -> list[dict]:
    items: list[dict] = []
    for page in ddb.get_paginator("scan").paginate(TableName=table, ConsistentRead=True):
        items.extend(page.get("Items", []))
    return items


def _parameters(ssm) -> dict[str, dict]:
    """Every SSM parameter with its type and description (values decrypted: the file is 0600)."""
    names = []
    for page in ssm.get_paginator("describe_parameters").paginate():
        names.extend(p["Name"] for p in page.get("Parameters", []))
    saved = {}
    for i in range(0, len(names), 10):
        for p in ssm.get_parameters(Names=names[i : i + 10], WithDecryption=True)["Parameters"]:
            saved[p["Name"]] = {"Value": p["Value"], "Type": p["Type"]}
    return saved


def save(
    emulator: Emulator,
    names: dict[str, str],
    kinds: dict[str, str],
    directory: Path,
    journal: Journal,
) -> int:
    """Save a snapshot and start a new journal segment; returns the snapshot's number.

    Tables and parameters are read under the journal's lock, right after the new segment starts:
    no write falls between the two, so the snapshot plus the journal from it is exact. S3 is read
    after (it is not journaled). Objects whose ETag is unchanged since the last snapshot are
    linked from it, not read again: only today's day objects change, and each GET costs CPU."""
    _mkdir(directory)
    previous = _current_folder(directory)
    ddb, ssm, s3 = emulator.client("dynamodb"), emulator.client("ssm"), emulator.client("s3")
    with journal.lock:
        number = journal.rotate()
        tables = {
            lid: _scan(ddb, name)
            for lid, name in names.items()
            if kinds[lid] == "table" and lid not in NOT_SAVED
        }
        parameters = _parameters(ssm)
    folder = directory / f"{number:06d}"
    tmp = directory / f"{number:06d}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    _mkdir(tmp / "dynamodb")
    manifest: dict = {"format": FORMAT, "journal_from": number, "tables": {}, "buckets": {}}
    for lid, items in tables.items():
        _write_file(tmp / "dynamodb" / f"{lid}.json", json.dumps(items).encode())
        manifest["tables"][lid] = len(items)
    fsync_directory(tmp / "dynamodb")
    _write_file(tmp / "ssm.json", json.dumps(parameters).encode())
    manifest["parameters"] = len(parameters)
    for lid, name in names.items():
        if kinds[lid] != "bucket" or lid in NOT_SAVED:
            continue
        target = tmp / "s3" / lid
        _mkdir(target)
        old = previous / "s3" / lid if previous else None
        count = 0
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=name):
            for obj in page.get("Contents", []):
                filename = quote(obj["Key"], safe="")
                count += 1
                if old is not None and _link_unchanged(old / filename, obj["ETag"], target / filename):
                    continue
                got = s3.get_object(Bucket=name, Key=obj["Key"])
                meta = {k: got[k] for k in ("ContentType", "ContentEncoding") if got.get(k)}
                _write_file(target / filename, got["Body"].read())
                _write_file(target / (filename + ".meta"), json.dumps({**meta, "ETag": got["ETag"]}).encode())
        fsync_directory(target)
        manifest["buckets"][lid] = count
    _write_file(tmp / MANIFEST, json.dumps(manifest).encode())
    fsync_directory(tmp)
    os.replace(tmp, folder)
    fsync_directory(directory)
    # The commit: CURRENT names the new snapshot (one atomic rename).
    _write_file(directory / (CURRENT + ".tmp"), f"{number:06d}\n".encode())
    os.replace(directory / (CURRENT + ".tmp"), directory / CURRENT)
    fsync_directory(directory)
    _forget_before(directory, journal.directory, number)
    return number


def _link_unchanged(previous: Path, etag: str, path: Path) -> bool:
    """Reuse the last snapshot's copy of an object (data and meta) if its ETag is the same."""
    previous_meta = previous.with_name(previous.name + ".meta")
    try:
        if json.loads(previous_meta.read_text()).get("ETag") != etag:
            return False
        for source, target in ((previous, path), (previous_meta, path.with_name(path.name + ".meta"))):
            try:
                os.link(source, target)  # the old snapshot is deleted after the commit; links survive
            except OSError:
                shutil.copyfile(source, target)
    except (OSError, ValueError):
        return False
    return True


def _forget_before(directory: Path, journal_dir: Path, number: int) -> None:
    """After a commit: older snapshots, unfinished ones, older journal segments, the old layout."""
    for entry in directory.iterdir():
        name = entry.name.removesuffix(".tmp")
        if entry.is_dir() and _NUMBER.match(name) and (int(name) < number or entry.name.endswith(".tmp")):
            shutil.rmtree(entry, ignore_errors=True)
        elif entry.is_dir() and entry.name in ("s3", "dynamodb"):  # the old layout, converted
            shutil.rmtree(entry, ignore_errors=True)
    for segment in segments(journal_dir):
        if segment_number(segment) < number:
            segment.unlink(missing_ok=True)
    data_dir = directory.parent
    (data_dir / LEGACY_PARAMETERS).unlink(missing_ok=True)
    for suffix in (".old", ".tmp"):
        shutil.rmtree(directory.with_name(directory.name + suffix), ignore_errors=True)


# -- reading ---------------------------------------------------------------------------------------
def _read_json(path: Path):
    try:
        return json.loads(path.read_bytes())
    except FileNotFoundError:
        raise StateFileError(f"{path} is missing; {_DAMAGED}") from None
    except OSError as exc:
        raise StateFileError(f"{path} cannot be read ({exc.strerror}); {_DAMAGED}") from None
    except ValueError:
        raise StateFileError(f"{path} is half-written or damaged (not JSON); {_DAMAGED}") from None


def _current_folder(directory: Path) -> Path | None:
    pointer = directory / CURRENT
    try:
        number = pointer.read_text().strip()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise StateFileError(f"{pointer} cannot be read ({exc.strerror}); {_DAMAGED}") from None
    if not _NUMBER.match(number):
        raise StateFileError(f"{pointer} is damaged (it should hold a snapshot number); {_DAMAGED}")
    folder = directory / number
    if not folder.is_dir():
        raise StateFileError(f"{folder} is missing (named by {pointer}); {_DAMAGED}")
    return folder


def restore(
    emulator: Emulator, names: dict[str, str], kinds: dict[str, str], directory: Path, journal_dir: Path
) -> Restored:
    """Load the committed snapshot into freshly created resources, then replay the journal.
    A data directory with no saved state at all is a first start (empty tables: open mode)."""
    result = Restored()
    folder = _current_folder(directory)
    if folder is not None:
        manifest = _read_json(folder / MANIFEST)
        if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
            raise StateFileError(f"{folder / MANIFEST} is not a snapshot manifest this version reads")
        result.records = _load(emulator, names, folder, manifest)
        start = int(manifest["journal_from"])
    elif (directory / "dynamodb").is_dir() or (directory / "s3").is_dir():
        result.records, result.legacy = _load_legacy(emulator, names, kinds, directory), True
        start = 0
    else:
        interrupted = directory.with_name(directory.name + ".old")
        if interrupted.is_dir():
            raise StateFileError(
                f"{directory} is missing and {interrupted} exists: a save was interrupted; move "
                f"{interrupted} back to {directory} to start from it"
            )
        # A first start commits its (empty) snapshot before anything is journaled; so a journal
        # with writes, or past its first segment, means the snapshot it continues was lost.
        orphans = [s for s in segments(journal_dir) if s.stat().st_size or segment_number(s) > 1]
        if orphans:
            raise StateFileError(
                f"{directory / CURRENT} is missing but {orphans[0]} continues it; {_DAMAGED}"
            )
        result.first = True
        return result
    pending = [s for s in segments(journal_dir) if segment_number(s) >= start]
    clients = {service: emulator.client(service) for service in ("dynamodb", "ssm")}
    for index, segment in enumerate(pending):
        entries, torn = read_entries(segment, last=index == len(pending) - 1)
        if torn:  # keep only whole entries, so this segment is not "torn" once newer ones exist
            drop_torn_tail(segment)
        applied, refused = replay(entries, clients.__getitem__)
        result.replayed += applied + refused
        result.torn = result.torn or torn
    numbers = [segment_number(s) for s in segments(journal_dir)]
    result.next_segment = max([start, *numbers]) + 1
    return result


def open_state(
    emulator: Emulator,
    names: dict[str, str],
    kinds: dict[str, str],
    directory: Path,
    journal: Journal,
) -> Restored:
    """What the stack does at start: restore, open the journal, and save a fresh snapshot when
    the state on disk is not one already (first start, replayed journal, older layout), so a
    journal never exists without the snapshot it continues."""
    restored = restore(emulator, names, kinds, directory, journal.directory)
    if restored.first:
        save(emulator, names, kinds, directory, journal)  # snapshot 1 commits, then segment 1 takes writes
        return restored
    journal.open(restored.next_segment)
    if restored.replayed or restored.torn or restored.legacy:
        save(emulator, names, kinds, directory, journal)
    return restored


def _load(emulator: Emulator, names: dict[str, str], folder: Path, manifest: dict) -> int:
    count = 0
    for lid, expected in manifest.get("tables", {}).items():
        path = folder / "dynamodb" / f"{lid}.json"
        items = _read_json(path)
        if not isinstance(items, list) or len(items) != expected:
            raise StateFileError(
                f"{path} holds {_count(items)} items, its manifest says {expected}; {_DAMAGED}"
            )
        if lid in names:
            _put_items(emulator, names[lid], items)
        count += len(items)
    parameters = _read_json(folder / "ssm.json")
    if not isinstance(parameters, dict) or len(parameters) != manifest.get("parameters"):
        raise StateFileError(f"{folder / 'ssm.json'} does not match its manifest; {_DAMAGED}")
    count += _put_parameters(emulator, parameters)
    for lid, expected in manifest.get("buckets", {}).items():
        bucket_folder = folder / "s3" / lid
        loaded = _put_objects(emulator, names.get(lid), bucket_folder)
        if loaded != expected:
            raise StateFileError(
                f"{bucket_folder} holds {loaded} objects, its manifest says {expected}; {_DAMAGED}"
            )
        count += loaded
    return count


def _count(value) -> str:
    return str(len(value)) if isinstance(value, list) else "no list of"


def _load_legacy(emulator: Emulator, names: dict[str, str], kinds: dict[str, str], directory: Path) -> int:
    """The layout before FORMAT 2 (tables, buckets; parameters beside the folder). Every table it
    saved must be there: a missing keys table is an error, not an open stack."""
    count = 0
    for lid, name in names.items():
        if kinds[lid] != "table" or lid in NOT_SAVED:
            continue
        path = directory / "dynamodb" / f"{lid}.json"
        items = _read_json(path)
        if not isinstance(items, list):
            raise StateFileError(f"{path} is damaged (no list of items); {_DAMAGED}")
        _put_items(emulator, name, items)
        count += len(items)
    for folder in (directory / "s3").glob("*"):
        count += _put_objects(emulator, names.get(folder.name), folder)
    legacy_parameters = directory.parent / LEGACY_PARAMETERS
    if legacy_parameters.exists():
        saved = _read_json(legacy_parameters)
        if not isinstance(saved, dict):
            raise StateFileError(f"{legacy_parameters} is damaged; {_DAMAGED}")
        count += _put_parameters(
            emulator, {n: {"Value": v, "Type": "SecureString"} for n, v in saved.items()}
        )
    return count


def _put_items(emulator: Emulator, table: str, items: list[dict]) -> None:
    ddb = emulator.client("dynamodb")
    for i in range(0, len(items), 25):
        batch = [{"PutRequest": {"Item": item}} for item in items[i : i + 25]]
        ddb.batch_write_item(RequestItems={table: batch})


def _put_parameters(emulator: Emulator, parameters: dict) -> int:
    ssm = emulator.client("ssm")
    for name, p in parameters.items():
        ssm.put_parameter(Name=name, Value=p["Value"], Type=p.get("Type", "SecureString"), Overwrite=True)
    return len(parameters)


def _put_objects(emulator: Emulator, bucket: str | None, folder: Path) -> int:
    if bucket is None or not folder.is_dir():
        return 0
    s3 = emulator.client("s3")
    count = 0
    for path in folder.iterdir():
        if path.name.endswith(".meta"):
            continue
        meta_path = path.with_name(path.name + ".meta")
        meta = _read_json(meta_path) if meta_path.exists() else {}
        meta.pop("ETag", None)  # moto computes it again from the same bytes
        try:
            body = path.read_bytes()
        except OSError as exc:
            raise StateFileError(f"{path} cannot be read ({exc.strerror}); {_DAMAGED}") from None
        s3.put_object(Bucket=bucket, Key=unquote(path.name), Body=body, **meta)
        count += 1
    return count


# What the stack keeps in its data directory (the only entries `make_private` touches).
STATE_ENTRIES = (
    "emulator-snapshot",
    "emulator-snapshot.old",
    "emulator-snapshot.tmp",
    "emulator-journal",
    "local-stack.json",
    "local-stack.tmp",
    "collector.pid",
    "session-token",
    LEGACY_PARAMETERS,
)


def make_private(data_dir: Path) -> None:
    """No access for group and others to the stack's state (an older version left it readable by
    every local user): the data directory and the entries the stack keeps there, recursively.
    Only what this user owns; symlinks and anything else in the directory are left alone."""
    uid = os.getuid()
    paths = [data_dir]
    for name in STATE_ENTRIES:
        entry = data_dir / name
        paths.append(entry)
        if entry.is_dir() and not entry.is_symlink():
            for root, dirs, files in os.walk(entry):
                paths.extend(Path(root, n) for n in dirs + files)
    for path in paths:
        with contextlib.suppress(OSError):
            st = path.lstat()
            if not path.is_symlink() and st.st_uid == uid and st.st_mode & 0o077:
                os.chmod(path, st.st_mode & 0o700)
