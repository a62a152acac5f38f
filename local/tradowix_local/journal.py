"""A write-ahead journal of the embedded emulator's DynamoDB and SSM writes.

moto keeps everything in memory. The snapshot (snapshot.py) saves it every 30 s, which alone
would lose every change of the last 30 s in a crash: a disabled key would work again, a new key
would be gone. So every request that changes a table or a parameter is appended to this journal
and fsync'd *before* the emulator answers it; at start the stack loads the last snapshot and
replays the journal written after it. A change the owner made (a key created, disabled, deleted,
restricted, a rate limit, the session token, the admin secret, a logout) is durable as soon as
the command or the panel says it is done.

Why a journal (and not write-through snapshots or another engine): one fsync'd append per write
costs well under a millisecond of CPU whatever the tables hold, covers every writer (functions,
collector, CLI, AWS CLI) in one place, the server, and keeps moto as the emulator. Why not moto's
own recorder: it records reads too, writes before knowing nothing else interleaves, never fsyncs,
and replays the original signatures, which the stack's per-start credentials would refuse.

- Written in the server, inside the credential check: only requests the emulator accepts are
  journaled, and the replay (with the stack's own credentials) cannot do more than they did.
- One lock is held from the append until moto has applied the request, so the journal's order
  is the order moto applied them in; the fsync happens after the lock (concurrent writers share
  one fsync: group commit).
- Segments: `<data>/emulator-journal/NNNNNN.log`, one JSON line per request. A snapshot starts a
  new segment under the same lock (snapshot.py), so "snapshot N + segments >= N" is exact.
- S3 (candles) is not journaled: it is the collector's bulk data, saved every 30 s, and the
  collector refills lost minutes from the source's history when it starts. Live WebSocket
  connections are not journaled either: they die with the stack.
"""

from __future__ import annotations

import io
import json
import os
import threading
from dataclasses import dataclass
from pathlib import Path

# X-Amz-Target prefix -> service, and the operations that change something.
_SERVICES = {"DynamoDB_20120810": "dynamodb", "AmazonSSM": "ssm"}
_WRITES = {
    "dynamodb": {"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"},
    "ssm": {"PutParameter", "DeleteParameter", "DeleteParameters"},
}
SEGMENT_SUFFIX = ".log"


class StateFileError(Exception):
    """A state file of the local stack is missing or damaged. The message is one line naming it."""


@dataclass(frozen=True)
class Entry:
    service: str
    operation: str
    params: dict

    def line(self) -> bytes:
        data = {"service": self.service, "op": self.operation, "params": self.params}
        return json.dumps(data, separators=(",", ":")).encode() + b"\n"


def segment_number(path: Path) -> int:
    return int(path.name.removesuffix(SEGMENT_SUFFIX))


def segments(directory: Path) -> list[Path]:
    """The journal's segments, oldest first (a name that is not a number is not ours)."""
    if not directory.is_dir():
        return []
    found = [p for p in directory.glob("*" + SEGMENT_SUFFIX) if p.name.removesuffix(SEGMENT_SUFFIX).isdigit()]
    return sorted(found, key=segment_number)


def fsync_directory(directory: Path) -> None:
    """Make a new, renamed or removed entry of `directory` durable."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Journal:
    """Appends entries to the current segment; `lock` orders appends with moto's applying them."""

    def __init__(self, directory: Path):
        self.directory = directory
        self.lock = threading.Lock()  # held: append + apply (middleware), rotate + read (snapshot)
        self._sync_lock = threading.Lock()
        self._fd: int | None = None
        self.segment = 0
        self._written = 0  # entries appended so far (all segments)
        self._synced = 0  # entries known to be on disk

    @property
    def active(self) -> bool:
        return self._fd is not None

    def open(self, segment: int) -> None:
        """Start writing segment `segment` (a new file)."""
        if not self.directory.exists():
            self.directory.mkdir(mode=0o700)  # (its parent, the data directory, exists: 0700)
        path = self.directory / f"{segment:06d}{SEGMENT_SUFFIX}"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        fsync_directory(self.directory)  # the new file itself survives a crash
        with self._sync_lock:
            old, self._fd, self.segment = self._fd, fd, segment
            if old is not None:
                os.fsync(old)
                os.close(old)
            self._synced = self._written

    def rotate(self) -> int:
        """Close the current segment (synced) and start the next; returns its number.
        The caller holds `lock`, so nothing is appended between the two."""
        self.open(self.segment + 1)
        return self.segment

    def append(self, entry: Entry) -> int:
        """Write one entry (the caller holds `lock`); returns its sequence number for `sync`."""
        data = entry.line()
        view = memoryview(data)
        while view:
            view = view[os.write(self._fd, view) :]
        self._written += 1
        return self._written

    def sync(self, sequence: int) -> None:
        """Return once entry `sequence` is on disk; one fsync covers every entry written before it."""
        with self._sync_lock:
            if self._synced >= sequence:
                return
            written = self._written
            os.fsync(self._fd)
            self._synced = max(self._synced, written)

    def close(self) -> None:
        with self._sync_lock:
            if self._fd is not None:
                os.fsync(self._fd)
                os.close(self._fd)
                self._fd = None


# -- what is journaled -----------------------------------------------------------------------------
def journal_entry(target: str, body: bytes, skipped_tables: frozenset[str]) -> Entry | None:
    """The entry for a request (X-Amz-Target and body), or None when it changes nothing we keep:
    reads, S3, and writes to tables that are not saved (live connections)."""
    prefix, _, operation = target.partition(".")
    service = _SERVICES.get(prefix)
    if service is None or operation not in _WRITES[service]:
        return None
    try:
        params = json.loads(body or b"{}")
    except ValueError:
        return None  # moto refuses it too; nothing changes
    if not isinstance(params, dict):
        return None
    if service == "dynamodb":
        params = _without_tables(operation, params, skipped_tables)
        if params is None:
            return None
    return Entry(service, operation, params)


def _without_tables(operation: str, params: dict, skipped: frozenset[str]) -> dict | None:
    if operation == "BatchWriteItem":
        items = {t: v for t, v in (params.get("RequestItems") or {}).items() if t not in skipped}
        return {**params, "RequestItems": items} if items else None
    if operation == "TransactWriteItems":
        kept = [
            item
            for item in params.get("TransactItems") or []
            if not any(isinstance(v, dict) and v.get("TableName") in skipped for v in item.values())
        ]
        return {**params, "TransactItems": kept} if kept else None
    return None if params.get("TableName") in skipped else params


class JournalMiddleware:
    """WSGI middleware in front of moto's app: journals writes before moto applies them and
    answers only once the entry is on disk. Passes everything through until the journal is open
    (the stack restores the snapshot and replays the journal first)."""

    def __init__(self, app, journal: Journal, skipped_tables: frozenset[str] = frozenset()):
        self.app = app
        self.journal = journal
        self.skipped_tables = skipped_tables

    def __call__(self, environ, start_response):
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        if not target or not self.journal.active or environ.get("REQUEST_METHOD") != "POST":
            return self.app(environ, start_response)
        from werkzeug.wsgi import get_input_stream

        body = get_input_stream(environ).read()
        environ["wsgi.input"] = io.BytesIO(body)
        environ["CONTENT_LENGTH"] = str(len(body))
        environ.pop("HTTP_TRANSFER_ENCODING", None)
        environ["wsgi.input_terminated"] = False
        entry = journal_entry(target, body, self.skipped_tables)
        if entry is None:
            return self.app(environ, start_response)
        answer: list = []

        def capture(status, headers, exc_info=None):
            answer[:] = [status, headers, exc_info]
            return lambda _data: None  # moto returns its body; it never writes through this

        with self.journal.lock:
            try:
                sequence = self.journal.append(entry)
            except OSError as exc:  # disk full, read-only: refuse before anything changes
                return _unavailable(start_response, f"the local stack cannot write its journal: {exc}")
            result = self.app(environ, capture)
            try:
                body_out = b"".join(result)  # applied once moto has produced the answer
            finally:
                if hasattr(result, "close"):
                    result.close()
        try:
            self.journal.sync(sequence)
        except OSError as exc:
            return _unavailable(start_response, f"the local stack cannot sync its journal: {exc}")
        start_response(*answer[:2])
        return [body_out]


def _unavailable(start_response, message: str):
    body = json.dumps({"__type": "ServiceUnavailable", "message": message}).encode()
    start_response(
        "503 Service Unavailable",
        [("Content-Type", "application/x-amz-json-1.0"), ("Content-Length", str(len(body)))],
    )
    return [body]


# -- reading it back -------------------------------------------------------------------------------
def read_entries(path: Path, *, last: bool) -> tuple[list[Entry], bool]:
    """The entries of a segment, and whether a torn last line was dropped. Only the newest
    segment may end in a torn line (a crash mid-append; that request was never answered);
    anything else that does not parse is damage, reported with the file and line."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise StateFileError(f"{path} cannot be read ({exc.strerror})") from None
    lines = data.split(b"\n")
    tail = lines.pop()  # b"" when the file ends with a newline
    entries: list[Entry] = []
    for number, raw in enumerate(lines, start=1):
        try:
            item = json.loads(raw)
            entries.append(Entry(item["service"], item["op"], item["params"]))
        except (ValueError, KeyError, TypeError):
            raise StateFileError(
                f"{path} line {number} is damaged (not a journal entry); the local stack's saved state "
                "cannot be trusted: restore the data directory from a backup or move it aside"
            ) from None
    if tail and not last:
        raise StateFileError(
            f"{path} ends in a half-written entry but is not the newest segment; restore the data "
            "directory from a backup or move it aside"
        )
    return entries, bool(tail)


def drop_torn_tail(path: Path) -> None:
    """Cut a half-written last line off a segment (after it was reported by `read_entries`)."""
    data = path.read_bytes()
    whole = data.rfind(b"\n") + 1
    fd = os.open(path, os.O_WRONLY)
    try:
        os.ftruncate(fd, whole)
        os.fsync(fd)
    finally:
        os.close(fd)


def replay(entries: list[Entry], clients) -> tuple[int, int]:
    """Apply entries in order with the stack's own credentials (`clients(service)` → a boto3
    client). Returns (applied, refused): a request the emulator refused the first time (a failed
    condition) is refused again in the same state, and that is not an error."""
    from botocore import xform_name
    from botocore.exceptions import ClientError, ParamValidationError

    applied = refused = 0
    for entry in entries:
        client = clients(entry.service)
        params = _binary_values(entry.params) if entry.service == "dynamodb" else entry.params
        try:
            getattr(client, xform_name(entry.operation))(**params)
            applied += 1
        except (ClientError, ParamValidationError):
            refused += 1
    return applied, refused


def _binary_values(value):
    """The wire format carries DynamoDB binary attributes base64-encoded; the client wants bytes."""
    import base64

    if isinstance(value, dict):
        if len(value) == 1 and isinstance(value.get("B"), str):
            return {"B": base64.b64decode(value["B"])}
        if len(value) == 1 and isinstance(value.get("BS"), list):
            return {"BS": [base64.b64decode(v) for v in value["BS"]]}
        return {k: _binary_values(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_binary_values(v) for v in value]
    return value
