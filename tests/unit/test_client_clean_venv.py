"""The client installs alone: `pip install <repo>` with no extras into a fresh venv gives a
working ChartApiClient (HTTP and live) and none of the server's dependencies.

Takes about 20 s (a venv and a pip install from the local cache). It runs by default; skip it
only on purpose with TRADOWIX_SKIP_CLEAN_VENV=1."""

from __future__ import annotations

import os
import shutil
import subprocess
import venv
from pathlib import Path

import pytest
from chart_fakes import FakeDeployment

ROOT = Path(__file__).resolve().parents[2]
KEY = "twk_" + "v" * 40

pytestmark = pytest.mark.skipif(
    os.environ.get("TRADOWIX_SKIP_CLEAN_VENV") == "1", reason="TRADOWIX_SKIP_CLEAN_VENV=1 set explicitly"
)

CHECK = """
import importlib.util, sys
from tradowix_bot.chart_client import ChartApiClient, AuthenticationError
present = [m for m in ("boto3", "fastapi", "moto", "mangum", "talipp", "matplotlib", "pandas")
           if importlib.util.find_spec(m)]
assert not present, f"server/strategy packages pulled in by the client: {present}"
client = ChartApiClient()  # TRADOWIX_CHART_URL / TRADOWIX_CHART_API_KEY
print("symbols", client.symbols()["count"])
print("candles", client.candles("BTCUSD-OTC", timeframe=60)["count"])
got = []
client.subscribe_live_sync(got.append, symbol="BTCUSD-OTC", timeframe=60, max_messages=3)
print("live", [m["type"] for m in got])
try:
    ChartApiClient(api_key="twk_wrong").verify()
except AuthenticationError:
    pass
import pathlib, tradowix_bot, tradowix_local  # the collector container installs the package this way
for package in (tradowix_bot, tradowix_local):
    root = pathlib.Path(package.__file__).parent
    print("packages", sorted(str(p.parent.relative_to(root.parent)) for p in root.rglob("__init__.py")))
"""


def test_client_alone_in_a_clean_venv(tmp_path):
    # given a copy of the package sources (so the build leaves the worktree clean)
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    shutil.copytree(ROOT / "layers/core/tradowix_bot", src / "layers/core/tradowix_bot")
    shutil.copytree(ROOT / "local/tradowix_local", src / "local/tradowix_local")
    # when it is installed without extras into a new venv
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    python = env_dir / "bin" / "python"
    subprocess.run(
        [python, "-m", "pip", "install", "-q", str(src)], check=True, capture_output=True, timeout=300
    )
    # then the client works against a deployment and nothing server-side came with it
    history = {
        "BTCUSD-OTC": [{"time": 60 * i, "open": 1, "high": 1, "low": 1, "close": 1} for i in range(1, 6)]
    }
    with FakeDeployment(history, key=KEY, bars_per_connection=3) as deployment:
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        env.update(TRADOWIX_CHART_URL=deployment.url, TRADOWIX_CHART_API_KEY=KEY)
        result = subprocess.run(
            [python, "-c", CHECK], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60
        )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[:3] == ["symbols 1", "candles 5", "live ['status', 'history', 'bar']"]
    # and every package of the sources was installed (the collector's container needs them all)
    sources = [ROOT / "layers/core/tradowix_bot", ROOT / "local/tradowix_local"]
    assert lines[3:] == [
        "packages " + str(sorted(str(p.parent.relative_to(root.parent)) for p in root.rglob("__init__.py")))
        for root in sources
    ]
