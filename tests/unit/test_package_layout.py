"""Given the tradowix_bot package split into its parts (docs/architecture.md, "Packages"), then:

- who may import whom holds, read from every module's imports (lazy ones inside functions too):
  the shared model imports no part; client/ imports only the shared model; strategy/ also the
  client; server/ imports no client/, strategy/, collector/ or cli/;
- the import paths partner bots used before the split (`tradowix_bot.chart_client`,
  `tradowix_bot.live_client`, `tradowix_bot.live_signals`, `from tradowix_bot import strategy`)
  give the very same objects as the new ones."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "layers/core/tradowix_bot"
SHARED = {"candles", "errors", "resample", "symbols", "timing"}
OLD_PATHS = {"chart_client", "live_client", "live_signals"}  # kept for partner bots: they import the parts
PARTS = {"client", "strategy", "server", "collector", "cli"}
# part (or "shared") → the parts its modules may import, besides the shared model
MAY_IMPORT = {
    "shared": set(),
    "client": set(),
    "strategy": {"client"},
    "server": set(),
    "collector": {"server"},
    "cli": {"client", "strategy", "server", "collector"},
}


def part_of(module: str) -> str | None:
    """'client' for tradowix_bot.client.x, 'shared' for tradowix_bot.candles, None for the package."""
    parts = module.split(".")
    if len(parts) < 2:
        return None
    return parts[1] if parts[1] in PARTS else "shared" if parts[1] in SHARED else parts[1]


def imports_of(path: Path) -> set[str]:
    """Every tradowix_bot module or name `path` imports, as absolute dotted names."""
    module = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    package = package.removesuffix(".__init__")
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("tradowix_bot")}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module or ""
            if name.startswith("tradowix_bot"):
                found |= {f"{name}.{a.name}" for a in node.names} if name == "tradowix_bot" else {name}
    return found


def test_each_part_imports_only_what_it_may():
    # given every module of the package but the old paths kept for partners
    wrong = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE)
        if len(rel.parts) == 1 and path.stem in OLD_PATHS | {"__init__"}:
            continue
        own = rel.parts[0] if len(rel.parts) > 1 else "shared"
        # when its imports are read, then each one is the shared model, its own part or one it may use
        for target in imports_of(path):
            other = part_of(target)
            if other in (None, own, "shared") or other in MAY_IMPORT[own]:
                continue
            wrong.append(f"{rel} imports {target} ({own} may not import {other})")
    assert wrong == []


def test_the_layout_names_every_top_level_module():
    # given the top level of the package, then it holds the shared model, the old paths and the parts
    top = {p.stem for p in PACKAGE.glob("*.py")} | {p.name for p in PACKAGE.iterdir() if p.is_dir()}
    assert top - {"__init__", "__pycache__"} == SHARED | OLD_PATHS | PARTS


@pytest.mark.parametrize(
    "old, new",
    [
        ("tradowix_bot.chart_client", "tradowix_bot.client.chart_client"),
        ("tradowix_bot.live_client", "tradowix_bot.client.live_client"),
        ("tradowix_bot.live_signals", "tradowix_bot.strategy.live_signals"),
    ],
)
def test_old_import_paths_are_the_moved_modules(old, new):
    # when a partner bot imports a module by its path from before the split, then it gets the moved module
    assert importlib.import_module(old) is importlib.import_module(new)


def test_old_partner_imports_give_the_same_objects():
    # given the imports partner bots and the README used before the split
    from tradowix_bot import strategy
    from tradowix_bot.chart_client import (
        AsyncChartApiClient,
        AuthenticationError,
        ChartApiClient,
        ChartApiError,
        LiveOptions,
        NetworkError,
        RateLimitedError,
        SymbolForbiddenError,
    )
    from tradowix_bot.live_client import parse_subscriptions, subscribe_live
    from tradowix_bot.live_signals import LiveSignals

    # then they are the objects of the new paths
    client = importlib.import_module("tradowix_bot.client")
    builtin = importlib.import_module("tradowix_bot.strategy.builtin")
    live_signals = importlib.import_module("tradowix_bot.strategy.live_signals")
    assert (ChartApiClient, AsyncChartApiClient, LiveOptions) == (
        client.ChartApiClient,
        client.AsyncChartApiClient,
        client.LiveOptions,
    )
    assert (ChartApiError, AuthenticationError, NetworkError, RateLimitedError, SymbolForbiddenError) == (
        client.ChartApiError,
        client.AuthenticationError,
        client.NetworkError,
        client.RateLimitedError,
        client.SymbolForbiddenError,
    )
    assert (parse_subscriptions, subscribe_live) == (client.parse_subscriptions, client.subscribe_live)
    assert LiveSignals is live_signals.LiveSignals
    assert (strategy.latest_signal, strategy.require, strategy.StrategyUnavailable) == (
        builtin.latest_signal,
        builtin.require,
        builtin.StrategyUnavailable,
    )
