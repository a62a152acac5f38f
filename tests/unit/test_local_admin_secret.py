"""Given a local stack's first start (or an owner who sets the secret), when the stack starts,
then the admin secret is generated and printed once and only its hash is stored, or the
owner's secret wins."""

from __future__ import annotations

import boto3
from tradowix_bot.server.admin import secret_matches
from tradowix_local.journal import Journal
from tradowix_local.parameters import ensure_admin_secret
from tradowix_local.snapshot import restore, save


class _Emulator:
    def client(self, service):
        return boto3.client(service)


def _stored(name):
    return boto3.client("ssm").get_parameter(Name=name, WithDecryption=True)["Parameter"]["Value"]


def test_first_start_generates_prints_once_and_stores_only_a_hash(aws_env, monkeypatch, tmp_path):
    monkeypatch.delenv("TRADOWIX_ADMIN_SECRET", raising=False)
    secret = ensure_admin_secret(_Emulator(), "/local/admin-secret")
    assert secret and len(secret) >= 20
    assert secret not in _stored("/local/admin-secret")
    assert secret_matches(secret, _stored("/local/admin-secret"))
    # a second start keeps it and prints nothing
    assert ensure_admin_secret(_Emulator(), "/local/admin-secret") is None
    assert secret_matches(secret, _stored("/local/admin-secret"))
    # it survives a restart of the emulator through the data directory, which holds no secret in clear
    journal = Journal(tmp_path / "journal")
    save(_Emulator(), {}, {}, tmp_path / "snapshot", journal)
    journal.close()
    boto3.client("ssm").delete_parameter(Name="/local/admin-secret")
    restore(_Emulator(), {}, {}, tmp_path / "snapshot", journal.directory)
    assert secret_matches(secret, _stored("/local/admin-secret"))
    assert all(secret not in p.read_text() for p in tmp_path.rglob("*") if p.is_file())
    assert all(p.stat().st_mode & 0o077 == 0 for p in tmp_path.rglob("*"))


def test_owner_set_secret_wins(aws_env, monkeypatch):
    ensure_admin_secret(_Emulator(), "/local/admin-secret")
    monkeypatch.setenv("TRADOWIX_ADMIN_SECRET", "owner-chosen-secret")
    assert ensure_admin_secret(_Emulator(), "/local/admin-secret") is None
    assert secret_matches("owner-chosen-secret", _stored("/local/admin-secret"))
