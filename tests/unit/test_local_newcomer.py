"""A newcomer's first steps with the local stack, without starting it:
- `--host 0.0.0.0` hands partners a WebSocket URL they can connect to (not ws://0.0.0.0);
- the banner names the live WebSocket and a CLI command that works without activating the venv;
- `--admin-only` advertises only the admin panel;
- the set-up says what it does and how long it takes, and a repeated set-up runs nothing.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from tradowix_local.stack import LocalStack, StackOptions

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "local"))
import bootstrap  # noqa: E402


def test_a_stack_on_all_interfaces_hands_out_a_websocket_url_partners_can_use(tmp_path):
    stack = LocalStack(StackOptions(host="0.0.0.0", data_dir=tmp_path))
    ws_url = stack._overrides()["WS_URL"]
    assert ws_url.startswith("ws://") and "0.0.0.0" not in ws_url and ws_url.endswith(":8766")
    assert ws_url == stack.ws_url and "0.0.0.0" not in stack.api_url
    # the collector on the same machine still posts over loopback
    assert stack._overrides()["WS_MANAGEMENT_ENDPOINT"].startswith("http://127.0.0.1:8766/")
    # a named address is used as it is
    from tradowix_local.stack import public_host

    assert public_host("192.168.1.5") == "192.168.1.5"
    assert public_host("0.0.0.0") not in ("0.0.0.0", "")


def test_the_banner_names_the_websocket_and_a_command_that_runs_outside_the_venv(tmp_path):
    stack = LocalStack(StackOptions(data_dir=tmp_path))
    text = "\n".join(stack.banner())
    assert "ws://127.0.0.1:8766" in text and "http://127.0.0.1:8765/admin" in text
    from tradowix_local.stack import cli_command

    command = cli_command()
    assert f"{command} keys create --name partner1" in text
    # and that command runs as printed, from the folder the stack runs in, with no venv activated
    ran = subprocess.run(
        [*command.split(), "keys", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin"},
    )
    assert ran.returncode == 0 and "create" in ran.stdout


def test_admin_only_advertises_only_the_admin_panel(tmp_path):
    stack = LocalStack(StackOptions(data_dir=tmp_path, admin_only=True))
    text = "\n".join(stack.banner())
    assert "/admin" in text and "admin unlock" in text
    for served_elsewhere in ("ws://", "curl", "chart:", "keys create", "/api/candles"):
        assert served_elsewhere not in text


@pytest.fixture
def project(tmp_path, monkeypatch):
    """bootstrap pointed at a scratch venv, with the installers replaced by recorders."""
    ran: list[list[str]] = []
    monkeypatch.setattr(bootstrap, "VENV", tmp_path / "venv")

    def fake_create(self, directory):
        (Path(directory) / "bin").mkdir(parents=True)
        (Path(directory) / "bin" / "python").write_text("")

    monkeypatch.setattr(bootstrap.venv.EnvBuilder, "create", fake_create)
    monkeypatch.setattr(
        bootstrap, "_run_with_progress", lambda command, what: ran.append([str(c) for c in command])
    )

    def fake_run(command, check=False, **_):
        ran.append([str(c) for c in command])
        if "venv" in command:
            fake_create(None, command[-1])
        return subprocess.CompletedProcess(command, 0)

    monkeypatch.setattr(bootstrap.subprocess, "run", fake_run)
    return ran


def test_first_set_up_says_what_and_how_long_then_repeats_run_nothing(project, monkeypatch, capsys):
    import shutil

    monkeypatch.setattr(shutil, "which", lambda _: None)  # plain Python: venv + pip
    # when the README's first command sets up a fresh clone
    bootstrap.ensure_venv("local,strategy")
    said = capsys.readouterr().out
    # then it says it is creating the venv and installing, with an estimate of how long
    assert "first start" in said and "minutes" in said
    assert any("pip" in c and "install" in c and c[-1].endswith("[local,server,strategy]") for c in project)
    # when it runs again (a second start), nothing is installed, nothing is said
    project.clear()
    bootstrap.ensure_venv("local,strategy")
    bootstrap.ensure_venv("local")  # a subset of what is installed
    assert project == [] and capsys.readouterr().out == ""
    # and the tests' bigger set-up adds to it, keeping what was there
    bootstrap.ensure_venv("dev")
    assert project[-1][-1].endswith("[ccxt,dev,local,server,strategy]")
    assert json.loads((bootstrap.VENV / ".tradowix-installed").read_text())["extras"] == [
        "ccxt",
        "dev",
        "local",
        "server",
        "strategy",
    ]


def test_uv_is_used_when_it_is_installed(project, monkeypatch):
    import shutil

    monkeypatch.setattr(shutil, "which", lambda name: "/usr/local/bin/uv" if name == "uv" else None)
    bootstrap.ensure_venv("local")
    assert project[0][:2] == ["/usr/local/bin/uv", "venv"]
    assert project[1][:3] == ["/usr/local/bin/uv", "pip", "install"]
