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


# -- browser assets and the test browser --------------------------------------------------------
VENDOR_DIR = ROOT / "functions" / "api" / "partner_api" / "static" / "vendor"
# npm package file -> name under static/vendor/ (what the pages reference)
VENDOR_FILES = {
    "lightweight-charts/dist/lightweight-charts.standalone.production.js": "lightweight-charts.standalone.production.js",
}
CHROMIUM = Path("/usr/bin/chromium")


def ensure_browser_assets() -> bool:
    """`npm ci` (from package-lock.json) when node is there, then copy the chart library into the
    API function's static/vendor/ so `sam build` ships it. Returns whether the assets are in place."""
    import shutil

    targets = [VENDOR_DIR / name for name in VENDOR_FILES.values()]
    lock = ROOT / "package-lock.json"
    stamp = ROOT / "node_modules" / ".tradowix-installed"
    digest = hashlib.sha256(lock.read_bytes()).hexdigest() if lock.exists() else ""
    npm = shutil.which("npm")
    if npm and (not stamp.exists() or stamp.read_text() != digest):
        print("[setup] installing browser packages with npm", flush=True)
        command = [npm, "ci" if lock.exists() else "install", "--no-audit", "--no-fund", "--loglevel=error"]
        if subprocess.run(command, cwd=ROOT).returncode == 0:
            stamp.write_text(digest)
    sources = [ROOT / "node_modules" / name for name in VENDOR_FILES]
    if all(s.exists() for s in sources):
        VENDOR_DIR.mkdir(parents=True, exist_ok=True)
        for source, target in zip(sources, targets, strict=True):
            if not target.exists() or target.read_bytes() != source.read_bytes():
                shutil.copyfile(source, target)
    elif not all(t.exists() for t in targets):
        print("[setup] warning: node/npm not found: the chart page needs `npm ci` (Node.js 18+)", flush=True)
    return all(t.exists() for t in targets)


def ensure_chromium() -> bool:
    """Debian's chromium for the browser tests (apt-get when root; never a downloaded browser)."""
    if CHROMIUM.exists():
        return True
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        print("[setup] installing Debian's chromium for the browser tests", flush=True)
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "install", "-y", "-q", "chromium"], env=env)
        if not CHROMIUM.exists():
            subprocess.run(["apt-get", "update", "-q"], env=env)
            subprocess.run(["apt-get", "install", "-y", "-q", "chromium"], env=env)
    else:
        print("[setup] warning: /usr/bin/chromium missing: run `sudo apt-get install chromium`", flush=True)
    return CHROMIUM.exists()


if __name__ == "__main__":
    # `python3 local/bootstrap.py`: fetch the browser assets (run it before `sam build`).
    sys.exit(0 if ensure_browser_assets() else 1)
