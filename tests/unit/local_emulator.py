"""The local stack's data services without the rest of the stack: moto's server with the
journal in front, started on a data directory exactly as the stack starts them (restore, replay,
journal), and "killed" the way kill -9 kills them: moto's memory gone, files left as they are.
Used by the durability and admin tests; one life takes about a second. `embedded_emulator()`:
the emulator alone, as the IAM and health tests use it."""

from __future__ import annotations

import contextlib
import os
from types import SimpleNamespace

from tradowix_bot.server import aws
from tradowix_local.emulator import Emulator, create_resources
from tradowix_local.journal import Journal, JournalMiddleware
from tradowix_local.snapshot import NOT_SAVED, open_state, save
from tradowix_local.template import Template


def _reset_moto(emulator) -> None:
    """moto's memory wiped, in this process (the server is ours; its /moto-api/ is not reachable
    over HTTP: the emulator refuses any request not signed with the stack's credentials)."""
    from moto.moto_api._internal.models import moto_api_backend

    moto_api_backend.reset()


class Node:
    """One life of the local stack's data services: emulator + journal on a data directory."""

    def __init__(self, data_dir):
        self.data_dir = data_dir
        self.template = Template()
        self.journal = Journal(data_dir / "emulator-journal")
        skipped = frozenset(self.template.physical_name(lid) for lid in NOT_SAVED)
        self.emulator = Emulator(middleware=lambda app: JournalMiddleware(app, self.journal, skipped))

    def start(self):
        """Start like the stack does: emulator, resources, restore + replay, journal open."""
        self.emulator.start()
        _reset_moto(self.emulator)  # a new process starts with nothing in memory (moto's is per process)
        aws.reset()
        self.names = create_resources(self.emulator, self.template)
        self.kinds = {k: "bucket" if k.endswith("Bucket") else "table" for k in self.names}
        return open_state(self.emulator, self.names, self.kinds, self.snapshot_dir, self.journal)

    @property
    def snapshot_dir(self):
        return self.data_dir / "emulator-snapshot"

    def save(self):
        return save(self.emulator, self.names, self.kinds, self.snapshot_dir, self.journal)

    def crash(self):
        """kill -9: moto's memory is gone; the journal's file is left as it is."""
        _reset_moto(self.emulator)
        self.emulator.stop()
        os.close(self.journal._fd)  # the descriptor dies with the process, nothing more is written
        self.journal._fd = None


@contextlib.contextmanager
def lives(data_dir, monkeypatch):
    """Yields start(): a new life of the data services on `data_dir`; the environment is restored after."""
    for name in ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION"):
        monkeypatch.setenv(name, os.environ.get(name, "testing"))
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.delenv("TRADOWIX_ADMIN_SECRET", raising=False)
    started = []

    def start():
        life = Node(data_dir)
        life.restored = life.start()
        started.append(life)
        return life

    try:
        yield start
    finally:
        for life in started:
            life.emulator.stop()
            if life.journal.active:
                life.journal.close()
        aws.reset()


@contextlib.contextmanager
def embedded_emulator():
    """The emulator as the local stack runs it (IAM enforced), empty, with the template's
    resources; yields (emulator, iam, names, template). The environment is restored after."""
    saved = dict(os.environ)
    template = Template()
    emulator = Emulator(None, template=template)
    emulator.start()
    _reset_moto(emulator)  # moto's memory is per process: nothing left by earlier tests
    names = create_resources(emulator, template)
    aws.reset()
    try:
        yield SimpleNamespace(emulator=emulator, iam=emulator.iam, names=names, template=template)
    finally:
        emulator.stop()
        os.environ.clear()
        os.environ.update(saved)
        aws.reset()
