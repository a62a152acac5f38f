"""Create the project's virtual environment and install what a command needs, using only the
standard library, so the README's commands work on a fresh machine with Python 3.11+."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VENV = Path(os.environ.get("TRADOWIX_VENV", ROOT / ".venv"))


def venv_python() -> Path:
    return VENV / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def _extras_closure(extras: set[str]) -> set[str]:
    """The extras `extras` pull in, through `tradowix-bot[...]` references in pyproject.toml."""
    import re
    import tomllib

    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    found, todo = set(), list(extras)
    while todo:
        extra = todo.pop()
        if extra in found:
            continue
        found.add(extra)
        for requirement in declared.get(extra, []):
            m = re.match(r"tradowix-bot\[([\w,\s-]+)\]", requirement)
            if m:
                todo.extend(e.strip() for e in m.group(1).split(","))
    return found


def _run_with_progress(command: list, what: str) -> None:
    """Run a long install, saying every 30 s that it is still going and how long it took."""
    started = time.monotonic()
    process = subprocess.Popen(command)
    while True:
        try:
            code = process.wait(timeout=30)
            break
        except subprocess.TimeoutExpired:
            print(f"[setup] still {what}... {time.monotonic() - started:.0f} s", flush=True)
    if code:
        raise SystemExit(
            f"[setup] {what} failed (exit {code}); the command was: {' '.join(map(str, command))}"
        )
    print(f"[setup] done {what} in {time.monotonic() - started:.0f} s", flush=True)


def ensure_venv(extras: str) -> Path:
    """Create .venv and install the project with `extras` (e.g. "local,strategy"), unless an
    earlier set-up already installed them from this very pyproject.toml: then nothing runs, so
    repeated starts cost nothing. Uses uv when it is on PATH (seconds instead of minutes);
    plain Python 3.11+ with pip works as well."""
    if sys.version_info < (3, 11):  # noqa: UP036 - this file runs on whatever python3 the user has
        raise SystemExit(f"Python 3.11 or newer is needed (this is {sys.version.split()[0]})")
    import json
    import shutil

    wanted = _extras_closure({e.strip() for e in extras.split(",") if e.strip()})
    python = venv_python()
    stamp = VENV / ".tradowix-installed"
    digest = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    try:
        installed = json.loads(stamp.read_text())
    except (OSError, ValueError):
        installed = {}
    if (
        python.exists()
        and installed.get("pyproject") == digest
        and wanted <= set(installed.get("extras", []))
    ):
        return python
    # Keep what an earlier set-up installed (the tests' extras, say) while adding what is wanted.
    extras_now = sorted(wanted | set(installed.get("extras", [])) if python.exists() else wanted)
    uv = shutil.which("uv")
    first = not python.exists()
    if first:
        print(f"[setup] first start: creating {VENV} with {'uv' if uv else 'venv'}", flush=True)
        if uv:
            subprocess.run([uv, "venv", "--quiet", "--python", sys.executable, str(VENV)], check=True)
        else:
            venv.EnvBuilder(with_pip=True).create(VENV)
    estimate = (
        "under a minute" if uv else "about 3-5 minutes on a busy 2-core machine, less with a warm pip cache"
    )
    print(
        f"[setup] installing the project with [{','.join(extras_now)}] into {VENV} ({estimate}"
        f"{'' if first else '; pyproject.toml changed'}; later starts skip this)",
        flush=True,
    )
    target = f"{ROOT}[{','.join(extras_now)}]"
    if uv:
        _run_with_progress(
            [uv, "pip", "install", "--quiet", "--python", str(python), "-e", target], "installing"
        )
    else:
        _run_with_progress([python, "-m", "pip", "install", "-q", "-e", target], "installing")
    stamp.write_text(json.dumps({"pyproject": digest, "extras": extras_now}))
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
