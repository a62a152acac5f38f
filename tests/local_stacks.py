"""Real local stacks (`tradowix chart` as a child process) for integration and browser tests.

Most tests share the session stacks of tests/conftest.py (`local_stack`, `stack_without_fanout`):
starting a stack costs seconds of CPU (emulator, a week of seeded history, the collector). Start
one of your own (`stacks` fixture, or `start_stack` here) only when the test is about the stack
itself: its start, restart, Ctrl-C or options.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import re
import signal
import socket
import subprocess
import sys
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import httpx
from polling import eventually

ROOT = Path(__file__).resolve().parents[1]
# A disabled key stops working within KEY_CACHE_SECONDS, and its open sockets close within
# twice LIVE_REVALIDATE_SECONDS (10 s on AWS by default); 2 s keeps key tests quick.
KEY_CACHE_SECONDS = os.environ.get("TEST_KEY_CACHE_SECONDS", "2")
LIVE_REVALIDATE_SECONDS = "2"
PR_SET_PDEATHSIG = 1  # linux/prctl.h


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def env_without_aws(**extra: str) -> dict[str, str]:
    """This process's environment minus AWS settings (a stack runs its own emulator)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(extra)
    return env


@dataclass
class RunningStack:
    api_url: str
    ws_url: str
    data_dir: Path
    process: subprocess.Popen
    log_path: Path

    def env(self) -> dict[str, str]:
        """Environment for CLI commands that should find this stack with no configuration."""
        return env_without_aws(TRADOWIX_DATA_DIR=str(self.data_dir))

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "tradowix_bot.cli", *args],
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=60,
            check=check,
        )

    def create_key(self, name: str = "partner", symbols: str | None = None) -> tuple[str, str]:
        """Returns (key_id, raw key) of a new key made with the CLI."""
        args = ["keys", "create", "--name", name] + (["--symbols", symbols] if symbols else [])
        out = self.cli(*args).stdout.strip().splitlines()
        raw = out[-1]
        key_id = out[0].split()[1]
        return key_id, raw

    def delete_key(self, key_id: str, raw: str) -> None:
        """Deletes a key made for a test (the session stack is shared) and waits until the stack
        shows it gone: the key refused, or open mode back if it was the last one."""
        self.cli("keys", "delete", key_id, check=False)
        symbols = self.api_url + "/api/symbols"

        def gone() -> bool:
            return (
                httpx.get(symbols, headers={"X-Api-Key": raw}).status_code == 401
                or httpx.get(symbols).status_code == 200
            )

        eventually(gone, within=30, what=f"key {key_id} gone")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def delete_all_keys(self) -> None:
        for key_id in sorted(set(re.findall(r"\bkey_[0-9a-f]+\b", self.cli("keys", "list").stdout))):
            self.cli("keys", "delete", key_id, check=False)

    def wait_open_mode(self, within: float = 30) -> None:
        """Waits until the API answers without a key (no key left and the key cache expired):
        the session stack is shared, and some tests need it open."""
        eventually(
            lambda: httpx.get(self.api_url + "/api/symbols", timeout=10).status_code == 200,
            within,
            "the API open again (no key left)",
            interval=0.25,
        )

    def runtime(self) -> dict:
        """The runtime file the stack writes when ready (emulator endpoint, table names...)."""
        return json.loads((self.data_dir / "local-stack.json").read_text())


def _stop_with_parent() -> None:
    """In the child before exec: Ctrl-C for the stack when the test process dies (a killed
    xdist worker runs no teardown, and the stack is in a session of its own)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGINT)


def start_stack(data_dir: Path, *extra: str, timeout: float = 180, env: dict | None = None) -> RunningStack:
    """Starts `tradowix chart` on free ports and returns once it serves /api/docs."""
    port, ws_port = free_port(), free_port()
    log_path = data_dir.with_suffix(".log")
    data_dir.mkdir(parents=True, exist_ok=True)
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tradowix_bot.cli",
            "chart",
            "--no-browser",
            "--port",
            str(port),
            "--ws-port",
            str(ws_port),
            "--data-dir",
            str(data_dir),
            *extra,
        ],
        stdout=log_path.open("w"),
        stderr=subprocess.STDOUT,
        env=env_without_aws(
            **{
                "KEY_CACHE_SECONDS": KEY_CACHE_SECONDS,
                "LIVE_REVALIDATE_SECONDS": LIVE_REVALIDATE_SECONDS,
                **(env or {}),
            }
        ),
        cwd=ROOT,
        start_new_session=True,
        preexec_fn=_stop_with_parent if sys.platform == "linux" else None,
    )
    stack = RunningStack(f"http://127.0.0.1:{port}", f"ws://127.0.0.1:{ws_port}", data_dir, process, log_path)

    def ready() -> bool:
        if process.poll() is not None:
            raise RuntimeError(f"local stack exited with {process.returncode}:\n{stack.log()}")
        if not (data_dir / "local-stack.json").exists():
            return False
        try:
            with urllib.request.urlopen(stack.api_url + "/api/docs", timeout=2) as resp:
                return resp.status == 200 and stack.runtime()["pid"] == process.pid
        except (OSError, ValueError, KeyError):  # not listening yet, or the file half-written
            return False

    try:
        eventually(
            ready, within=timeout, what=f"the local stack serving /api/docs (log: {log_path})", interval=0.2
        )
    except BaseException:
        stop_stack(stack)
        raise
    return stack


def assert_no_access_denied(stack: RunningStack) -> None:
    """The stack enforces template.yaml's IAM: a call a role may not make is a bug even when the
    caller swallows the AccessDenied, so the session's stacks must have refused none."""
    refused = sorted({line for line in stack.log().splitlines() if "AccessDenied:" in line})
    assert not refused, "calls the template does not allow:\n" + "\n".join(refused)


def stop_stack(stack: RunningStack) -> int:
    """Ctrl-C, as a user stops it; SIGKILL for the whole group if it hangs."""
    if stack.process.poll() is None:
        stack.process.send_signal(signal.SIGINT)
        try:
            stack.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(stack.process.pid, signal.SIGKILL)
            stack.process.wait()
    return stack.process.returncode
