"""Given the build inputs of what we deploy (both API functions, the layer, the collector image),
then a build installs exactly the locked versions, each file checked against its hash (no build
can pull "whatever is newest"), and ships compiled bytecode for Lambda's read-only code directory."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LOCKED = ["functions/api", "layers/core", "infra/collector"]


def requirements(path: Path) -> dict[str, list[str]]:
    """name -> the lines of its entry, with -r files followed."""
    entries: dict[str, list[str]] = {}
    current = None
    for line in path.read_text().splitlines():
        stripped = line.split("#", 1)[0].strip()
        if not stripped:
            continue
        if stripped.startswith("-r "):
            entries.update(requirements((path.parent / stripped[3:].strip()).resolve()))
            continue
        if stripped.startswith("--hash="):
            entries[current].append(stripped)
            continue
        name = re.split(r"[=<>!~\[ ;\\]", stripped, maxsplit=1)[0].lower().replace("_", "-")
        current = name
        entries[name] = [stripped.rstrip("\\").strip()]
    return entries


@pytest.mark.parametrize("folder", LOCKED)
def test_every_dependency_is_pinned_and_hashed(folder):
    lock = requirements(ROOT / folder / "requirements.txt")
    assert lock
    for name, lines in lock.items():
        assert re.fullmatch(rf"{re.escape(name)}==[\w.+!-]+", lines[0].lower().replace("_", "-")), lines[0]
        assert any(h.startswith("--hash=sha256:") for h in lines[1:]), f"{name} has no hash"


@pytest.mark.parametrize("folder", LOCKED)
def test_the_lock_holds_everything_the_inputs_ask_for(folder):
    wanted = requirements(ROOT / folder / "requirements.in")
    lock = requirements(ROOT / folder / "requirements.txt")
    assert set(wanted) <= set(lock)


def test_builds_install_the_locks_with_hash_checking_and_compile_bytecode():
    for makefile in ("functions/api/Makefile", "layers/core/Makefile"):
        text = (ROOT / makefile).read_text()
        assert "--require-hashes" in text and "-r requirements.txt" in text, makefile
    for makefile in ("functions/api/Makefile", "layers/core/Makefile", "functions/ws/Makefile"):
        assert (
            "compileall" in (ROOT / makefile).read_text()
            and "unchecked-hash" in (ROOT / makefile).read_text()
        )
    dockerfile = (ROOT / "infra/collector/Dockerfile").read_text()
    assert "--require-hashes" in dockerfile and "infra/collector/requirements.txt" in dockerfile


def test_every_function_and_the_layer_are_built_by_their_makefile():
    from tradowix_local.template import Template

    template = Template()
    built = {
        **template.of_type("AWS::Serverless::Function"),
        **template.of_type("AWS::Serverless::LayerVersion"),
    }
    for logical_id, resource in built.items():
        assert resource.get("Metadata", {}).get("BuildMethod") == "makefile", logical_id
        code = resource["Properties"].get("CodeUri") or resource["Properties"]["ContentUri"]
        assert f"build-{logical_id}:" in (ROOT / code / "Makefile").read_text().replace(
            " build-", ":\nbuild-"
        ), logical_id
