"""Given the test suite itself, when a developer selects tests with -m or runs a part of it with
tests/run.py, then every integration, fault and browser test file carries its marker, and a run
of unit tests sets up neither browser packages (npm) nor Chromium (apt)."""

from __future__ import annotations

import ast
import runpy
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parents[1]
MARKER_OF_FOLDER = {"integration": "integration", "faults": "integration", "e2e": "e2e"}


def declared_markers(path: Path) -> set[str]:
    """The markers of a module's `pytestmark = pytest.mark.X` (or a list of them)."""
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "pytestmark" for t in node.targets):
            values = node.value.elts if isinstance(node.value, ast.List) else [node.value]
            return {v.attr for v in values if isinstance(v, ast.Attribute)}
    return set()


@pytest.mark.parametrize("folder", sorted(MARKER_OF_FOLDER))
def test_every_file_of_the_layer_declares_its_marker(folder):
    # given: the test files of the folder
    files = sorted((TESTS / folder).glob("test_*.py"))
    assert files
    # then: each declares the folder's marker, so `-m integration` / `-m "not e2e"` select them
    missing = [f.name for f in files if MARKER_OF_FOLDER[folder] not in declared_markers(f)]
    assert missing == []


def test_running_unit_tests_sets_up_no_browser(monkeypatch, tmp_path):
    # given: tests/run.py with its set-up steps recorded instead of run
    sys.path.insert(0, str(TESTS.parent / "local"))
    import bootstrap

    done: list[str] = []
    monkeypatch.setattr(bootstrap, "ensure_venv", lambda extra: done.append(f"venv[{extra}]") or tmp_path)
    monkeypatch.setattr(bootstrap, "ensure_browser_assets", lambda: done.append("npm ci"))
    monkeypatch.setattr(bootstrap, "ensure_chromium", lambda: done.append("apt-get chromium"))
    executed: list[list[str]] = []
    monkeypatch.setattr("os.execv", lambda _python, argv: executed.append(argv))
    monkeypatch.setattr("os.chdir", lambda _path: None)
    # when: a developer runs `python3 tests/run.py tests/unit -k keys`
    monkeypatch.setattr(sys, "argv", ["tests/run.py", "tests/unit", "-k", "keys"])
    runpy.run_path(str(TESTS / "run.py"), run_name="__main__")
    # then: only the venv is set up, and pytest runs the selection on one worker per core
    assert done == ["venv[dev]"]
    (argv,) = executed
    assert argv[1:] == ["-m", "pytest", "-n", "auto", "--dist", "loadgroup", "tests/unit", "-k", "keys"]


def test_run_py_leaves_distribution_to_a_developer_who_chooses(monkeypatch):
    # given: tests/run.py's argument handling
    run = runpy.run_path(str(TESTS / "run.py"), run_name="run")
    # when/then: -n, --dist, --pdb or -p no:xdist are passed through as they are
    for args in (["-n", "0"], ["-n0"], ["--dist", "load"], ["--pdb"], ["-p", "no:xdist"]):
        assert run["parallel_by_default"](args) == args
