#!/usr/bin/env python3
"""One command to set up and run the test suite:

    python3 tests/run.py [pytest arguments]      e.g. tests/unit -k keys, -m "not e2e"

Creates .venv with the [dev] extra, then runs pytest on one worker per core (pytest-xdist; pass
`-n 0` for a single process, e.g. to use --pdb). Browser packages (`npm ci`) and Chromium are set
up by the suite itself, only when a test needs them (tests/conftest.py). Integration tests start
their own local stack on 127.0.0.1; nothing else needs to be running. See tests/README.md.
"""

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "local"))
from bootstrap import ROOT, ensure_venv  # noqa: E402


def parallel_by_default(args: list[str]) -> list[str]:
    """`-n auto --dist loadgroup` unless the caller chose how to distribute (or debugs)."""
    for arg in args:
        if arg.startswith(("-n", "--numprocesses", "--dist", "--pdb", "--trace")) or arg.endswith("no:xdist"):
            return args
    return ["-n", "auto", "--dist", "loadgroup", *args]


if __name__ == "__main__":
    python = ensure_venv("dev")
    os.chdir(ROOT)
    os.execv(python, [str(python), "-m", "pytest", *parallel_by_default(sys.argv[1:])])
