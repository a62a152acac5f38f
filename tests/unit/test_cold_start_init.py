"""Given a fresh Lambda container (a new interpreter), when it imports the partner API's handler
(Lambda's init, which runs at full CPU before the first request's clock starts), then the boto3
clients are made there, not on the first request, and no AWS call happens yet."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

PROBE = textwrap.dedent(
    """
    import socket
    connects = []
    real = socket.socket.connect
    socket.socket.connect = lambda self, address: connects.append(address) or real(self, address)
    from partner_api.app import handler
    from tradowix_bot.server import aws
    print(aws.clients_made(), len(connects))
    """
)


def test_the_handlers_init_makes_the_clients_and_calls_nothing():
    with socket.socket() as s:  # a port nobody listens on: any call would show as a connect
        s.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{s.getsockname()[1]}"
    from tradowix_local.template import Template

    env = {
        **os.environ,
        **Template().functions()["ApiFunction"].environment,
        "PYTHONPATH": str(ROOT / "functions" / "api"),
        "AWS_ENDPOINT_URL": closed,
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "init",
        "AWS_SECRET_ACCESS_KEY": "init",
    }
    out = subprocess.run(
        [sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, timeout=120, cwd=ROOT
    )
    assert out.returncode == 0, out.stderr[-2000:]
    clients, connects = map(int, out.stdout.split()[-2:])
    assert clients >= 2  # S3 and DynamoDB, ready for the first request
    assert connects == 0
