"""Given the local stack's embedded emulator (moto's server with the journal in front, as the
stack runs it), when the owner changes keys, the session token or the admin secret and the
process dies before any snapshot, then a restart has every change the emulator answered; and a
missing, half-written or damaged state file stops the start with one line naming it, never an
empty (open) key table. The crash is moto's memory wiped with the journal left as kill -9 leaves it."""

from __future__ import annotations

import json
import os
import stat

import boto3
import pytest
from local_emulator import lives
from tradowix_bot.server.admin import LoginThrottle, SessionTokenStore, secret_matches
from tradowix_bot.server.keys import KeyRegistry
from tradowix_bot.server.state import StateStore
from tradowix_local.journal import StateFileError, segments
from tradowix_local.parameters import ensure_admin_secret
from tradowix_local.snapshot import make_private

pytestmark = pytest.mark.security


@pytest.fixture
def node(tmp_path, monkeypatch):
    """Starts lives of the data services on one data directory (see local_emulator.py)."""
    with lives(tmp_path / "data", monkeypatch) as start:
        yield start


def registry(life) -> KeyRegistry:
    return KeyRegistry(life.names["KeysTable"], cache_seconds=0)


def keys_by_id(life) -> dict:
    return {r.key_id: r for r in registry(life).list()}


def test_owner_changes_answered_just_before_a_kill_survive_it(node):
    # given a stack that saved a snapshot with two keys
    first = node()
    disabled, _ = registry(first).create("to-disable")
    deleted, _ = registry(first).create("to-delete")
    first.save()
    # when the owner changes things (no snapshot after them) and the process is killed
    registry(first).set_enabled(disabled.key_id, False)
    registry(first).delete(deleted.key_id)
    created, raw = registry(first).create("created-just-before", ["BTCUSD-OTC"])
    restricted, _ = registry(first).create("restricted")
    registry(first).restrict(restricted.key_id, ["EURUSD-OTC"])
    SessionTokenStore("/local/session-token").replace("tok_owner_1")
    admin_secret = ensure_admin_secret(first.emulator, "/local/admin-secret")
    first.crash()
    # then the next start has every one of them
    second = node()
    assert second.restored.replayed >= 6
    keys = keys_by_id(second)
    assert keys[disabled.key_id].enabled is False
    assert deleted.key_id not in keys
    assert keys[created.key_id].symbols == ["BTCUSD-OTC"]
    assert registry(second).authenticate(raw).key_id == created.key_id
    assert keys[restricted.key_id].symbols == ["EURUSD-OTC"]
    ssm = boto3.client("ssm", endpoint_url=second.emulator.endpoint_url)
    token = ssm.get_parameter(Name="/local/session-token", WithDecryption=True)["Parameter"]
    assert token["Value"] == "tok_owner_1" and token["Type"] == "SecureString"
    stored = ssm.get_parameter(Name="/local/admin-secret", WithDecryption=True)["Parameter"]["Value"]
    assert secret_matches(admin_secret, stored)


def test_snapshot_and_journal_together_are_exact_even_for_counters(node):
    # given login attempts counted before and after a snapshot (a counter, not idempotent)
    first = node()
    throttle = LoginThrottle(StateStore(first.names["StateTable"]), clock=lambda: 1000.0)
    assert [throttle.claim("10.0.0.9") for _ in range(2)] == [0, 0]
    first.save()
    assert [throttle.claim("10.0.0.9") for _ in range(2)] == [0, 0]
    # when the process is killed and started again
    first.crash()
    second = node()
    # then the count is 4, not 6 (nothing replayed twice): the next attempt is the locking 5th
    record = StateStore(second.names["StateTable"]).get("admin-login", "10.0.0.9")
    assert record["attempts"] == 4
    assert LoginThrottle(StateStore(second.names["StateTable"]), clock=lambda: 1000.0).claim("10.0.0.9") == 2


def test_a_crash_in_the_middle_of_a_save_keeps_the_previous_snapshot_and_its_journal(node, monkeypatch):
    # given a saved key, then a newer one
    first = node()
    old, _ = registry(first).create("old")
    first.save()
    new, _ = registry(first).create("new")
    # when a save dies just before its commit (the rename of CURRENT)
    real_replace = os.replace

    def die_at_commit(src, dst):
        if str(dst).endswith("CURRENT"):
            raise KeyboardInterrupt("killed")
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", die_at_commit)
    with pytest.raises(KeyboardInterrupt):
        first.save()
    monkeypatch.setattr(os, "replace", real_replace)
    first.crash()
    # then the next start has both keys (previous snapshot + both journal segments)
    second = node()
    assert set(keys_by_id(second)) == {old.key_id, new.key_id}


def test_a_half_written_last_journal_entry_is_dropped_and_said(node):
    # given a key whose write was answered, then a write torn by the kill
    first = node()
    kept, _ = registry(first).create("kept")
    path = segments(first.journal.directory)[-1]
    first.crash()
    with path.open("ab") as f:
        f.write(b'{"service":"dynamodb","op":"PutItem","params":{"TableName":')
    # when the stack starts again
    second = node()
    # then the torn entry is dropped (and reported), the answered one is there
    assert second.restored.torn is True
    assert set(keys_by_id(second)) == {kept.key_id}
    # and a later kill and start is clean (the torn line is not read again)
    second.crash()
    third = node()
    assert third.restored.torn is False and set(keys_by_id(third)) == {kept.key_id}


def test_a_damaged_journal_line_is_one_line_naming_the_file(node):
    # given a journal with a damaged line in the middle
    first = node()
    registry(first).create("a")
    registry(first).create("b")
    path = segments(first.journal.directory)[-1]
    first.crash()
    lines = path.read_bytes().split(b"\n")
    lines[0] = b"garbage"
    path.write_bytes(b"\n".join(lines))
    # when the stack starts: then one line naming the file and the line
    with pytest.raises(StateFileError) as exc:
        node()
    assert str(path) in str(exc.value) and "line 1" in str(exc.value) and "\n" not in str(exc.value)


@pytest.fixture(scope="module")
def saved_data_dir(tmp_path_factory):
    """A data directory holding a committed snapshot with one key (made once, copied per test)."""
    data_dir = tmp_path_factory.mktemp("saved") / "data"
    with pytest.MonkeyPatch.context() as monkeypatch, lives(data_dir, monkeypatch) as start:
        life = start()
        registry(life).create("partner")
        life.save()
        life.crash()
    return data_dir


def _saved_stack(saved_data_dir, tmp_path):
    """A copy of the saved data directory where the `node` fixture starts; (snapshot dir, folder)."""
    import shutil

    shutil.copytree(saved_data_dir, tmp_path / "data")
    snapshot_dir = tmp_path / "data" / "emulator-snapshot"
    return snapshot_dir, snapshot_dir / (snapshot_dir / "CURRENT").read_text().strip()


@pytest.mark.parametrize(
    "damage",
    [
        "keys table deleted",
        "keys table half-written",
        "manifest half-written",
        "CURRENT names a missing snapshot",
        "CURRENT damaged",
        "snapshot deleted, journal left",
    ],
)
def test_missing_or_damaged_keys_data_refuses_to_start_instead_of_opening_the_api(
    node, damage, saved_data_dir, tmp_path
):
    # given a stack that saved one key
    snapshot_dir, folder = _saved_stack(saved_data_dir, tmp_path)
    keys_file = folder / "dynamodb" / "KeysTable.json"
    named = {
        "keys table deleted": keys_file,
        "keys table half-written": keys_file,
        "manifest half-written": folder / "manifest.json",
        "CURRENT names a missing snapshot": folder,
        "CURRENT damaged": snapshot_dir / "CURRENT",
        "snapshot deleted, journal left": snapshot_dir / "CURRENT",
    }[damage]
    # when its state files are damaged
    if damage == "keys table deleted":
        keys_file.unlink()
    elif damage in ("keys table half-written", "manifest half-written"):
        named.write_bytes(named.read_bytes()[: len(named.read_bytes()) // 2])
    elif damage == "CURRENT names a missing snapshot":
        import shutil

        shutil.rmtree(folder)
    elif damage == "CURRENT damaged":
        named.write_text("0000")
    else:
        import shutil

        shutil.rmtree(snapshot_dir)
    # then starting is one line naming the file, and nothing was served open
    with pytest.raises(StateFileError) as exc:
        node()
    message = str(exc.value)
    assert str(named) in message and "\n" not in message


def test_an_old_layout_without_the_keys_table_refuses_to_start(node, tmp_path):
    # given a snapshot in the layout of the previous version whose keys table file is gone
    old = tmp_path / "data" / "emulator-snapshot"
    (old / "dynamodb").mkdir(parents=True)
    (old / "dynamodb" / "StateTable.json").write_text("[]")
    # when the stack starts: then one line naming the missing file
    with pytest.raises(StateFileError) as exc:
        node()
    assert str(old / "dynamodb" / "KeysTable.json") in str(exc.value)


def test_an_old_swap_interrupted_between_its_two_renames_refuses_to_start(node, tmp_path):
    # given the previous version's swap died after moving the snapshot aside
    (tmp_path / "data" / "emulator-snapshot.old" / "dynamodb").mkdir(parents=True)
    # then the start says what happened instead of starting empty (open)
    with pytest.raises(StateFileError) as exc:
        node()
    assert "emulator-snapshot.old" in str(exc.value)


def test_an_old_layout_is_read_and_converted(node, tmp_path):
    # given the previous version's snapshot and parameters file
    data = tmp_path / "data"
    old = data / "emulator-snapshot"
    (old / "dynamodb").mkdir(parents=True)
    item = {
        "key_id": {"S": "key_old"},
        "name": {"S": "old"},
        "key_hash": {"S": "ab"},
        "enabled": {"BOOL": True},
    }
    (old / "dynamodb" / "KeysTable.json").write_text(json.dumps([item]))
    (old / "dynamodb" / "StateTable.json").write_text("[]")
    (data / "ssm-parameters.json").write_text(json.dumps({"/local/admin-secret": "hash"}))
    # when the stack starts and saves
    life = node()
    assert life.restored.legacy and "key_old" in keys_by_id(life)
    life.save()
    # then the new layout replaced the old one
    assert (old / "CURRENT").exists() and not (old / "dynamodb").exists()
    assert not (data / "ssm-parameters.json").exists()


def test_state_files_are_private_to_the_owner(node, tmp_path):
    # given a data directory an older version left readable by everyone
    data = tmp_path / "data"
    (data / "emulator-snapshot").mkdir(parents=True)
    os.chmod(data, 0o755)
    (data / "local-stack.json").write_text("{}")
    os.chmod(data / "local-stack.json", 0o644)
    make_private(data)
    # when the stack writes its snapshot and journal
    life = node()
    registry(life).create("partner")
    SessionTokenStore("/local/session-token").replace("tok_private")
    life.save()
    # then no file or directory under it is open to group or others
    for root, dirs, files in os.walk(data):
        for name in [*dirs, *files, "."]:
            mode = stat.S_IMODE(os.stat(os.path.join(root, name)).st_mode)
            assert mode & 0o077 == 0, (os.path.join(root, name), oct(mode))


def test_the_emulator_listens_on_loopback_even_when_the_stack_serves_all_interfaces(tmp_path):
    from tradowix_local.stack import LocalStack, StackOptions

    stack = LocalStack(StackOptions(host="0.0.0.0", data_dir=tmp_path / "data"))
    assert stack.emulator.host == "127.0.0.1"
