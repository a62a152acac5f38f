"""The local stack's collector: `python -m tradowix_bot.cli collect` as a supervised child.

It is the same command the container runs. The child writes to the stack's emulator, so
killing it (SIGKILL) and the supervisor restarting it exercise the real restart path: the
restarted collector repairs the gap from history. Ctrl-C on the stack stops it (SIGTERM).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path


class CollectorProcess:
    def __init__(
        self,
        data_dir: Path,
        *,
        source: str,
        token: str | None,
        backfill_days: float | None,
        log,
        token_parameter: str = "",
        environment: dict[str, str] | None = None,
        emf_sink=None,
    ):
        self.data_dir = data_dir
        self.source = source
        self.token = token
        self.token_parameter = token_parameter
        self.environment = environment or {}  # the collector role's credentials
        self.emf_sink = emf_sink  # its EMF metric lines go here (the local CloudWatch), not to the console
        self.backfill_days = backfill_days
        self.log = log
        self.process: subprocess.Popen | None = None
        self.restarts = 0
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._supervise, name="collector-supervisor", daemon=True)

    @property
    def pid_file(self) -> Path:
        return self.data_dir / "collector.pid"

    def _command(self) -> list[str]:
        # A stable owner: the restarted child takes its own lease back at once.
        cmd = [
            sys.executable,
            "-m",
            "tradowix_bot.cli",
            "collect",
            "--source",
            self.source,
            "--owner",
            "local-stack",
        ]
        if self.backfill_days is not None:
            cmd += ["--backfill-days", str(self.backfill_days)]
        return cmd

    def _spawn(self) -> None:
        env = dict(os.environ)
        env["TRADOWIX_DATA_DIR"] = str(self.data_dir)
        env.update(self.environment)
        if self.token:
            env["TRADOWIX_SESSION_TOKEN"] = self.token  # never on the command line (ps shows it)
        if self.token_parameter:  # the admin panel's stored token (SSM in the emulator)
            env["TRADOWIX_TOKEN_PARAMETER"] = self.token_parameter
        if self.emf_sink is None:
            self.process = subprocess.Popen(self._command(), env=env)
        else:
            self.process = subprocess.Popen(
                self._command(), env=env, stdout=subprocess.PIPE, text=True, errors="replace", bufsize=1
            )
            threading.Thread(target=self._read_output, args=(self.process,), daemon=True).start()
        self.pid_file.write_text(str(self.process.pid))
        self.log(f"collector started (pid {self.process.pid}, source {self.source})")

    def _read_output(self, process: subprocess.Popen) -> None:
        """Echo the child's output; its EMF lines (metrics) go to the sink instead."""
        import json

        for line in process.stdout:
            if line.startswith('{"_aws"'):
                try:
                    self.emf_sink(json.loads(line))
                    continue
                except ValueError:
                    pass
            sys.stdout.write(line)
            sys.stdout.flush()

    def start(self) -> None:
        self._spawn()
        self._thread.start()

    def _supervise(self) -> None:
        backoff = 1.0
        while not self._stopping.is_set():
            code = self.process.wait()
            if self._stopping.is_set() or code == 0:
                return  # asked to stop (Ctrl-C reaches the whole process group), not a crash
            self.log(f"collector exited with {code}; restarting in {backoff:.0f}s")
            if self._stopping.wait(backoff):
                return
            backoff = min(backoff * 2, 30.0)
            self.restarts += 1
            self._spawn()

    def wait_backfilled(self, state, timeout: float) -> bool:
        """Wait until the collector reports its first history repair done (so curl answers at once)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                status = state.upstream_status() or {}
            except Exception:  # noqa: BLE001 - the emulator is up; a miss just means "not yet"
                status = {}
            if status.get("backfilled") and status.get("owner") == "local-stack":
                return True
            if status.get("last_error") and not status.get("authenticated"):
                self.log(f"collector: {status['last_error']}")  # e.g. the token was refused
                return False
            if self.process and self.process.poll() is not None and self.restarts == 0:
                return False
            time.sleep(0.2)
        return False

    def stop(self) -> None:
        self._stopping.set()
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.pid_file.unlink(missing_ok=True)
