"""The local stack's own lifecycle: it imports the original's data/candles at start, its banner's
commands work as printed, Ctrl-C stops everything it started (cleanly, with a live subscriber
connected), and keys and candles survive a restart with the same data directory. Uses a stack of
its own (not the session's)."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlparse

import httpx
import pytest
import websockets
from tradowix_bot.candles import write_candle_file

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.integration


def processes_in_group(pgid: int) -> list[int]:
    """Live processes whose process group is `pgid` (the stack runs in a session of its own)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        state, pgrp = fields[0], int(fields[2])
        if pgrp == pgid and state != "Z":
            found.append(int(stat.parent.name))
    return found


def port_is_free(url: str) -> bool:
    """Nothing listens: connecting is refused and a server could bind it again (TIME_WAIT
    connections of the old server are fine, as for any server using SO_REUSEADDR)."""
    port = urlparse(url).port
    with socket.socket() as s:
        if s.connect_ex(("127.0.0.1", port)) == 0:
            return False
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def ctrl_c(stack) -> int:
    stack.process.send_signal(signal.SIGINT)
    return stack.process.wait(timeout=30)


async def subscribed_until_ctrl_c(stack, key: str) -> None:
    """A live subscriber connected while the stack is stopped (the chart left open in a browser)."""
    async with websockets.connect(f"{stack.ws_url}?api_key={key}") as ws:
        await ws.send(json.dumps({"type": "subscribe", "symbol": "BTCUSD-OTC", "timeframe": 60}))
        while json.loads(await ws.recv())["type"] != "history":
            pass
        assert ctrl_c(stack) == 0


def test_state_survives_a_restart_and_ctrl_c_leaves_nothing_behind(tmp_path, stacks):
    start_stack, stop_stack = stacks
    data_dir = tmp_path / "data"
    # given the original's candle folder in the data directory (data/candles by default)
    imported = [(1_700_000_040 + 60 * i, 1.5, 1.75, 1.25, 1.5 + i / 100) for i in range(3)]
    write_candle_file(data_dir / "candles" / "IMPORT-OTC.json", imported)
    stack = start_stack(data_dir)
    try:
        # then `chart` imported it with no flag
        got = httpx.get(stack.api_url + "/api/candles?symbol=IMPORT-OTC&timeframe=60").json()
        assert [c["close"] for c in got["candles"]] == [1.5, 1.51, 1.52]
        # and the banner's command for keys works as printed, from the repository, without the venv
        printed = re.search(r"create a key: (\S+) keys create --name partner1", stack.log())
        assert printed and re.search(r"live WebSocket: ws://127\.0\.0\.1:\d+", stack.log())
        listed = subprocess.run(
            [printed.group(1), "keys", "list"], cwd=ROOT, env={**stack.env(), "PATH": "/usr/bin:/bin"},
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert listed.returncode == 0 and "No keys" in listed.stdout
        # given: a key made with the CLI and the seeded candles
        key_id, key = stack.create_key("survivor", "BTCUSD-OTC")
        headers = {"X-Api-Key": key}
        before = httpx.get(
            stack.api_url + "/api/candles?symbol=BTCUSD-OTC&limit=2000", headers=headers
        ).json()
        assert before["count"] == 2000
        pid, api_url, ws_url = stack.process.pid, stack.api_url, stack.ws_url
        # when: Ctrl-C, with a live subscriber connected
        asyncio.run(subscribed_until_ctrl_c(stack, key))
    finally:
        stop_stack(stack)
    # then it stops without complaint
    assert "Unclosed client session" not in stack.log() and "Traceback" not in stack.log()
    # then: the process, its children and its port are gone; the runtime file removed
    assert processes_in_group(pid) == []
    assert port_is_free(api_url) and port_is_free(ws_url)
    assert not (data_dir / "local-stack.json").exists()
    # and the CLI says so instead of talking to a dead endpoint
    with_no_stack = subprocess.run(
        [sys.executable, "-m", "tradowix_bot.cli", "keys", "list"],
        env=stack.env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert with_no_stack.returncode == 1 and with_no_stack.stderr.startswith("error: no stack")

    # when: started again with the same data directory
    again = start_stack(data_dir)
    try:
        # then: the key works at once, with its restriction, and the candles are the same
        closed = before["candles"][:-1]  # the newest bar may still have been forming
        start, end = closed[0]["time"], closed[-1]["time"] + 60
        after = httpx.get(
            again.api_url + f"/api/candles?symbol=BTCUSD-OTC&start={start}&end={end}", headers=headers
        )
        assert after.status_code == 200
        assert after.json()["candles"] == closed
        assert httpx.get(again.api_url + "/api/candles?symbol=EURUSD-OTC", headers=headers).status_code == 403
        assert key_id in again.cli("keys", "list").stdout
        assert "seeded" not in again.log()  # the store was not empty, nothing re-seeded
    finally:
        assert stop_stack(again) == 0
    assert processes_in_group(again.process.pid) == []
    assert os.path.isdir(data_dir)
