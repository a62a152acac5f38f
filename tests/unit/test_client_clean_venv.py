"""Given a fresh venv for each partner install the README gives, when the partner installs and
runs it, then:

- `pip install tradowix-bot` (the client alone) gives a working ChartApiClient (HTTP and live),
  importing no other part of the package (server/, strategy/, ...),
  and none of the server's dependencies; the `tradowix` CLI starts, and every command that
  needs more says which extra in one line;
- `pip install 'tradowix-bot[strategy]'` runs `tradowix signal`, `backtest --url` and `live`.

The client-only venv gets the lowest versions the manifest allows of the client's dependencies
(httpx, websockets): the floors in pyproject.toml must be true. The [strategy] venv gets the newest.

One venv per install, shared by the tests of this file (about 20 s each from the local pip
cache). It runs by default; skip it only on purpose with TRADOWIX_SKIP_CLEAN_VENV=1."""

from __future__ import annotations

import os
import random
import re
import shutil
import subprocess
import tomllib
import venv
from pathlib import Path

import pytest
from chart_fakes import FakeDeployment
from tradowix_bot.candles import write_candle_file

ROOT = Path(__file__).resolve().parents[2]
KEY = "twk_" + "v" * 40

pytestmark = pytest.mark.skipif(
    os.environ.get("TRADOWIX_SKIP_CLEAN_VENV") == "1", reason="TRADOWIX_SKIP_CLEAN_VENV=1 set explicitly"
)

CHECK = """
import importlib.util, sys
from tradowix_bot.client.chart_client import ChartApiClient, AuthenticationError
present = [m for m in ("boto3", "fastapi", "moto", "mangum", "talipp", "matplotlib", "pandas")
           if importlib.util.find_spec(m)]
assert not present, f"server/strategy packages pulled in by the client: {present}"
from tradowix_bot.client import ChartApiClient as FromThePackage  # the path since the package split
assert FromThePackage is ChartApiClient
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
parts = {m.split(".")[1] for m in sys.modules if m.startswith("tradowix_bot.") and m.count(".") > 1}
assert parts == {"client"}, f"the client imported other parts of the package: {parts}"
import pathlib, tradowix_bot, tradowix_local  # the collector container installs the package this way
for package in (tradowix_bot, tradowix_local):
    root = pathlib.Path(package.__file__).parent
    print("packages", sorted(str(p.parent.relative_to(root.parent)) for p in root.rglob("__init__.py")))
"""


class Install:
    def __init__(self, env_dir: Path):
        self.python = env_dir / "bin" / "python"
        self.tradowix = env_dir / "bin" / "tradowix"

    def run(
        self, *argv: str, env: dict | None = None, cwd: Path | None = None, timeout: float = 60
    ) -> subprocess.CompletedProcess:
        clean = {k: v for k, v in os.environ.items() if k != "PYTHONPATH" and not k.startswith("TRADOWIX_")}
        clean.update(env or {})
        return subprocess.run(argv, env=clean, cwd=cwd, capture_output=True, text=True, timeout=timeout)


def manifest_floors() -> list[str]:
    """`name==X` for every `name>=X` of the package's own dependencies (the client's)."""
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    return [f"{m[1]}=={m[2]}" for d in deps if (m := re.fullmatch(r"([\w-]+)>=([\w.]+)", d.strip()))]


def _install(tmp_path_factory, extra: str, pins: list[str] = ()) -> Install:
    base = tmp_path_factory.mktemp("install")
    # a copy of the package sources, so the build leaves the worktree clean
    src = base / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    shutil.copytree(ROOT / "layers/core/tradowix_bot", src / "layers/core/tradowix_bot")
    shutil.copytree(ROOT / "local/tradowix_local", src / "local/tradowix_local")
    env_dir = base / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    subprocess.run(
        [env_dir / "bin" / "python", "-m", "pip", "install", "-q", f"{src}{extra}", *pins],
        check=True,
        capture_output=True,
        timeout=600,
    )
    return Install(env_dir)


@pytest.fixture(scope="module")
def client_only(tmp_path_factory) -> Install:
    floors = manifest_floors()
    assert {p.split("==")[0] for p in floors} == {"httpx", "websockets"}
    return _install(tmp_path_factory, "", floors)


@pytest.fixture(scope="module")
def with_strategy(tmp_path_factory) -> Install:
    return _install(tmp_path_factory, "[strategy]")


def random_walk(n: int, end: int = 1_710_000_000) -> list[dict]:
    rng, x, out = random.Random(5), 1.0, []
    for i in range(n):
        o = x
        x *= 1 + rng.gauss(0, 0.002)
        out.append(
            {
                "time": end - (n - i) * 60,
                "open": o,
                "high": max(o, x) + 1e-3,
                "low": min(o, x) - 1e-3,
                "close": x,
            }
        )
    return out


@pytest.fixture(scope="module")
def candle_file(tmp_path_factory) -> Path:
    from tradowix_bot.candles import bar_from_mapping

    path = tmp_path_factory.mktemp("candles") / "BTCUSD-OTC.json"
    write_candle_file(path, [bar_from_mapping(c) for c in random_walk(200)])
    return path


def one_line_error(result: subprocess.CompletedProcess, needle: str) -> None:
    assert result.returncode == 1, result.stderr
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1, result.stderr
    assert needle in result.stderr and "Traceback" not in result.stderr


def test_client_alone_in_a_clean_venv(client_only):
    # given the client installed without extras into a new venv
    history = {
        "BTCUSD-OTC": [{"time": 60 * i, "open": 1, "high": 1, "low": 1, "close": 1} for i in range(1, 6)]
    }
    # when it talks to a deployment
    with FakeDeployment(history, key=KEY, bars_per_connection=3) as deployment:
        result = client_only.run(
            client_only.python,
            "-c",
            CHECK,
            env={"TRADOWIX_CHART_URL": deployment.url, "TRADOWIX_CHART_API_KEY": KEY},
        )
    # then the client works and nothing server-side came with it
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[:3] == ["symbols 1", "candles 5", "live ['status', 'history', 'bar']"]
    # and every package of the sources was installed (the collector's container needs them all)
    sources = [ROOT / "layers/core/tradowix_bot", ROOT / "local/tradowix_local"]
    assert lines[3:] == [
        "packages " + str(sorted(str(p.parent.relative_to(root.parent)) for p in root.rglob("__init__.py")))
        for root in sources
    ]


@pytest.mark.parametrize("install", ["client_only", "with_strategy"])
def test_tradowix_help_works_in_both_partner_installs(request, install):
    partner = request.getfixturevalue(install)
    # when the partner asks the CLI for help, then it answers (no server import at start)
    result = partner.run(partner.tradowix, "--help")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: tradowix") and "signal" in result.stdout
    for command in ("signal", "backtest", "live", "keys"):
        result = partner.run(partner.tradowix, command, "--help")
        assert result.returncode == 0 and result.stdout.startswith(f"usage: tradowix {command}"), (
            result.stderr
        )


def test_client_only_install_names_the_extra_each_command_needs(client_only, candle_file, tmp_path):
    # given the client alone: the strategy commands say to install [strategy] ...
    one_line_error(client_only.run(client_only.tradowix, "signal", str(candle_file)), "[strategy]")
    with FakeDeployment({"BTCUSD-OTC": random_walk(200)}, key=KEY) as deployment:
        url = ["--url", deployment.url, "--key", KEY]
        one_line_error(client_only.run(client_only.tradowix, "backtest", *url, "--no-plot"), "[strategy]")
        one_line_error(client_only.run(client_only.tradowix, "live", "BTCUSD-OTC", *url), "[strategy]")
    # ... and the owner's commands say to install [server], without touching anything
    one_line_error(client_only.run(client_only.tradowix, "keys", "list", cwd=tmp_path), "[server]")
    one_line_error(
        client_only.run(client_only.tradowix, "collect", "--source", "synthetic", cwd=tmp_path), "[server]"
    )
    one_line_error(client_only.run(client_only.tradowix, "chart", "--no-browser", cwd=tmp_path), "[local]")
    assert list(tmp_path.iterdir()) == []


def test_strategy_install_runs_signal_backtest_and_live(with_strategy, candle_file, tmp_path):
    # given the [strategy] install: signal on a candle file
    result = with_strategy.run(with_strategy.tradowix, "signal", str(candle_file), "--min-confidence", "0")
    assert result.returncode == 0, result.stderr
    assert "BTCUSD-OTC  60s" in result.stdout and ("CALL" in result.stdout or "PUT" in result.stdout)
    with FakeDeployment({"BTCUSD-OTC": random_walk(300)}, key=KEY, bars_per_connection=3) as deployment:
        url = ["--url", deployment.url, "--key", KEY]
        # backtest against a deployment, with its plot
        plot = tmp_path / "bt.png"
        result = with_strategy.run(with_strategy.tradowix, "backtest", *url, "--plot", str(plot))
        assert result.returncode == 0, result.stderr
        assert "VERDICT" in result.stdout and plot.read_bytes()[:4] == b"\x89PNG"
        # live: a signal line per closed bar
        result = with_strategy.run(
            with_strategy.tradowix, "live", "BTCUSD-OTC", *url, "--min-confidence", "0", "--max-bars", "2"
        )
        assert result.returncode == 0, result.stderr
        assert len(result.stdout.strip().splitlines()) == 2 and "BTCUSD-OTC  60s" in result.stdout
    # the server's packages still did not come along
    result = with_strategy.run(with_strategy.python, "-c", "import boto3")
    assert result.returncode != 0 and "No module named 'boto3'" in result.stderr
