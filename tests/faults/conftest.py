"""Fixtures of the fault-injection suite: one data-services emulator (moto's server in its own
process) for the folder, emptied before each scenario, and a fresh rig per scenario."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import urllib.request

import pytest
from polling import eventually
from rig import Rig

CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "local",
    "AWS_SECRET_ACCESS_KEY": "local",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def emulator_endpoint():
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        env={**os.environ, **CREDENTIALS},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"

    def answers() -> bool:
        assert process.poll() is None, "the emulator exited"
        try:
            urllib.request.urlopen(endpoint + "/moto-api/", timeout=1)
        except OSError:
            return False
        return True

    eventually(answers, 60, "the emulator answering")
    yield endpoint
    process.terminate()
    process.wait(10)


@pytest.fixture
def rig(emulator_endpoint, tmp_path, monkeypatch):
    from tradowix_bot.server import aws
    from tradowix_local.emulator import Emulator, create_resources
    from tradowix_local.template import Template

    urllib.request.urlopen(urllib.request.Request(emulator_endpoint + "/moto-api/reset", method="POST"))
    for name, value in {**CREDENTIALS, "AWS_ENDPOINT_URL": emulator_endpoint}.items():
        monkeypatch.setenv(name, value)
    template = Template()
    for function in ("ApiFunction", "WsFunction"):
        for name, value in template.functions()[function].environment.items():
            monkeypatch.setenv(name, value)
    aws.reset()
    names = create_resources(Emulator(emulator_endpoint), template)
    made = []

    def make(**kw) -> Rig:
        made.append(Rig(tmp_path, emulator_endpoint, names, monkeypatch, **kw))
        return made[-1]

    yield make
    for r in made:
        r.close()
    aws.reset()
