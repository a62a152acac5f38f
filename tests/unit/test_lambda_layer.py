"""Given the core layer as layers/core/Makefile builds it (its LAYER_SOURCES, copied the same way)
and each function's code as its Makefile copies it, when a Python that sees only those (and the
third-party packages, as Lambda's would: `-I -S`, no editable install of this tree) imports every
handler and every module of the layer, then:

- every handler imports, and so does every module in the layer (it needs nothing left out);
- the layer holds no client/, strategy/, collector/ or cli/ module, nor the old client import paths;
- every shared top-level module it ships is one a handler imports (the list stays minimal).

No network and no `sam`: `.ci/template-checks` runs the real `sam build`."""

from __future__ import annotations

import json
import os
import shutil
import site
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HANDLERS = {  # CodeUri folder → what its Makefile copies, and the template's handler modules
    "api": ("partner_api", ["partner_api.app", "partner_api.admin_app"]),
    "ws": ("live_ws", ["live_ws.handler"]),
}

PROBE = """
import importlib, json, pkgutil, sys
sys.path[:0] = {paths!r}
for name in {handlers!r}:
    importlib.import_module(name)
loaded = sorted(m for m in sys.modules if m.startswith("tradowix_bot"))
import tradowix_bot
every = [m.name for m in pkgutil.walk_packages(tradowix_bot.__path__, "tradowix_bot.")]
for name in every:
    importlib.import_module(name)
print(json.dumps({{"loaded": loaded, "layer": every, "file": tradowix_bot.__file__}}))
"""


def layer_sources() -> list[str]:
    """LAYER_SOURCES of layers/core/Makefile (its continuation lines joined)."""
    text = (ROOT / "layers/core/Makefile").read_text().replace("\\\n", " ")
    line = next(line for line in text.splitlines() if line.startswith("LAYER_SOURCES ="))
    return line.split("=", 1)[1].split()


def build_layer(target: Path) -> Path:
    """`mkdir -p python/tradowix_bot; cp -R $(LAYER_SOURCES) python/tradowix_bot/`, as the Makefile."""
    package = target / "python" / "tradowix_bot"
    package.mkdir(parents=True)
    for source in layer_sources():
        path = ROOT / "layers/core" / source
        if path.is_dir():
            shutil.copytree(path, package / path.name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(path, package / path.name)
    return target / "python"


def lambda_env() -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "TRADOWIX_"))}
    env.update(
        AWS_DEFAULT_REGION="us-east-1",
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        CANDLES_BUCKET="candles",
        KEYS_TABLE="keys",
        STATE_TABLE="state",
        CONNECTIONS_TABLE="connections",
        WS_MANAGEMENT_ENDPOINT="https://ws.invalid/prod",
    )
    return env


def test_the_layer_is_what_the_handlers_need_and_nothing_else(tmp_path):
    # given the layer and the functions' code, built as their Makefiles build them
    layer = build_layer(tmp_path / "layer")
    shipped = sorted(str(p.relative_to(layer)) for p in layer.rglob("*.py"))
    third_party = [p for p in site.getsitepackages() if Path(p).is_dir()]
    results = {}
    for function, (folder, handlers) in HANDLERS.items():
        code = tmp_path / function
        shutil.copytree(ROOT / "functions" / function / folder, code / folder)
        # when a Lambda-like Python imports the handlers, then every module of the layer
        probe = PROBE.format(paths=[str(code), str(layer), *third_party], handlers=handlers)
        out = subprocess.run(
            [sys.executable, "-I", "-S", "-c", probe],
            env=lambda_env(),
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
        )
        # then they all import, from the layer
        assert out.returncode == 0, f"{function}: {out.stderr[-3000:]}"
        results[function] = json.loads(out.stdout.strip().splitlines()[-1])
        assert results[function]["file"].startswith(str(layer))
    # and the layer holds none of the partner's or the owner's tools
    for forbidden in ("client/", "strategy/", "collector/", "cli/"):
        assert not [p for p in shipped if p.startswith(f"tradowix_bot/{forbidden}")], forbidden
    for old_path in ("chart_client.py", "live_client.py", "live_signals.py"):
        assert f"tradowix_bot/{old_path}" not in shipped
    # and every shared top-level module it ships is imported by a handler
    loaded = set().union(*(r["loaded"] for r in results.values()))
    top_level = {p.removesuffix(".py").replace("/", ".") for p in shipped if p.count("/") == 1}
    assert top_level - {"tradowix_bot.__init__"} <= loaded
