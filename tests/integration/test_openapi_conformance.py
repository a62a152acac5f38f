"""Given the OpenAPI document the session's local stack publishes and a valid key, when
Schemathesis (a real client nobody here wrote) runs every check it has over it (issue 11 item
12), then every answer is what the document says, and every request the document allows is
served (and every request it forbids refused). Bounded so it stays quick: a fixed seed and a
few examples per operation (the coverage phase adds the boundary cases of every parameter)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

SCHEMATHESIS = Path(sys.executable).with_name("st")


@pytest.fixture
def st_key(local_stack):
    """A key for the run, with a limit high enough that the run is not throttled; deleted after
    (the stack is shared), and gone before the next test runs."""
    out = local_stack.cli("keys", "create", "--name", "schemathesis", "--rate-limit", "1000000").stdout
    key_id, raw = out.splitlines()[0].split()[1], out.strip().splitlines()[-1]
    yield raw
    local_stack.delete_key(key_id, raw)


def test_the_published_openapi_document_holds_for_every_check(local_stack, st_key, tmp_path):
    if not SCHEMATHESIS.exists():
        pytest.fail(f"schemathesis is not installed in this venv ({SCHEMATHESIS}): it is in the dev extra")
    result = subprocess.run(
        [
            str(SCHEMATHESIS),
            "run",
            f"{local_stack.api_url}/api/openapi.json",
            "--header",
            f"X-Api-Key: {st_key}",
            "--checks",
            "all",
            "--max-examples",
            "8",
            "--seed",
            "20261201",
            "--generation-deterministic",
            "--report-dir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=240,
        cwd=tmp_path,
    )
    report = result.stdout + result.stderr
    assert result.returncode == 0, report[-6000:]
    assert "0 failures" in report or "No issues found" in report or "passed" in report, report[-3000:]
