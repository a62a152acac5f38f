"""Create the project's virtual environment and install what a command needs, using only the
standard library, so the README's commands work on a fresh machine with Python 3.11+."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VENV = Path(os.environ.get("TRADOWIX_VENV", ROOT / ".venv"))


def venv_python() -> Path:
    return VENV / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def ensure_venv(extra: str) -> Path:
    """Create .venv and `pip install -e .[extra]` unless pyproject.toml is unchanged since."""
    if sys.version_info < (3, 11):  # noqa: UP036 - this file runs on whatever python3 the user has
        raise SystemExit(f"Python 3.11 or newer is needed (this is {sys.version.split()[0]})")
    python = venv_python()
    if not python.exists():
        print(f"[setup] creating {VENV}", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    digest = hashlib.sha256((ROOT / "pyproject.toml").read_bytes() + extra.encode()).hexdigest()
    stamp = VENV / f".installed-{extra}"
    if not stamp.exists() or stamp.read_text() != digest:
        print(f"[setup] installing the project with [{extra}] into {VENV}", flush=True)
        subprocess.run([python, "-m", "pip", "install", "-q", "--upgrade", "pip"], check=True)
        subprocess.run([python, "-m", "pip", "install", "-q", "-e", f"{ROOT}[{extra}]"], check=True)
        stamp.write_text(digest)
    return python
