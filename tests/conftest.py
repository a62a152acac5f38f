"""The suite's shared fixtures and rules (tests/README.md explains them).

- Markers by folder: tests/unit/* are `unit`; every file under tests/integration, tests/faults
  and tests/e2e must declare `pytestmark = pytest.mark.integration` (`.e2e` for tests/e2e)
  itself (collection fails, naming the file, when one does not), so `-m` filtering always works.
- `aws_env`: in-process moto with the template's buckets and tables (unit tests).
- `local_stack`, `stack_without_fanout`: one real local stack each for the whole session (per
  xdist worker; every test that uses one runs on the same worker, see `_xdist_group`).
- `stacks`: (start_stack, stop_stack) for the few tests about a stack's own life.
- Browser assets (`npm ci`) are set up only when a session stack starts, Chromium only when an
  e2e test runs: `tests/run.py tests/unit` installs neither.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import hashlib
import inspect
import os
import re
import sys
import tempfile
import warnings
from pathlib import Path

import pytest
from local_stacks import assert_no_access_denied, start_stack, stop_stack

ROOT = Path(__file__).resolve().parents[1]
TESTS = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT / "functions" / "api"))

# Unit tests never talk to a real AWS account.
os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")


# -- speed: botocore's service models parsed once per process --------------------------------
def _share_botocore_models() -> None:
    """Tests reset the product's boto3 session often (`aws.reset()`: moto per test, endpoints
    switched between stacks); each new session re-parsed the S3/DynamoDB/SSM models from JSON
    (~0.1 s of CPU per client). One loader (a read-only cache of those files) for the process."""
    import botocore.loaders
    import botocore.session

    botocore.session.create_loader = functools.cache(botocore.loaders.create_loader)


_share_botocore_models()


@functools.cache
def _template_resources() -> tuple[dict[str, str], dict[str, dict], dict[str, str]]:
    """template.yaml read once: bucket names, table definitions, the HTTP API functions' environment."""
    from tradowix_local.template import Template

    template = Template()
    buckets = {lid: template.physical_name(lid) for lid in template.of_type("AWS::S3::Bucket")}
    tables = {}
    for logical_id, res in template.of_type("AWS::DynamoDB::Table").items():
        props = template.resolve(res["Properties"])
        kwargs = {k: props[k] for k in ("AttributeDefinitions", "KeySchema") if k in props}
        if props.get("GlobalSecondaryIndexes"):
            kwargs["GlobalSecondaryIndexes"] = props["GlobalSecondaryIndexes"]
        tables[logical_id] = {"TableName": template.physical_name(logical_id), **kwargs}
    environment = {}
    for function in ("ApiFunction", "AdminFunction"):  # the HTTP API's two functions
        environment.update(template.functions()[function].environment)
    return buckets, tables, environment


@pytest.fixture
def aws_env(monkeypatch):
    """moto in-process with the template's resources created; yields their names."""
    from moto import mock_aws
    from tradowix_bot.server import aws

    buckets, tables, environment = _template_resources()
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        aws.reset()
        names = dict(buckets)
        # The product's own (cached) clients: creating a boto3 client costs more CPU than the calls.
        s3 = aws.client("s3")
        for name in buckets.values():
            s3.create_bucket(Bucket=name)
        dynamodb = aws.client("dynamodb")
        for logical_id, definition in tables.items():
            names[logical_id] = definition["TableName"]
            dynamodb.create_table(BillingMode="PAY_PER_REQUEST", **definition)
        for k, v in environment.items():
            monkeypatch.setenv(k, v)
        yield names
        aws.reset()


# -- one-time set-ups shared by xdist workers -----------------------------------------------
@contextlib.contextmanager
def _setup_lock():
    """Workers start stacks at the same time; `npm ci` and apt must not run twice at once."""
    digest = hashlib.sha256(str(ROOT).encode()).hexdigest()[:12]
    with open(Path(tempfile.gettempdir()) / f"tradowix-test-setup-{digest}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _bootstrap():
    sys.path.insert(0, str(ROOT / "local"))
    import bootstrap

    return bootstrap


@functools.cache
def _browser_assets() -> None:
    """The chart library under static/vendor (the pages a stack serves reference it)."""
    with _setup_lock():
        _bootstrap().ensure_browser_assets()


@functools.cache
def _chromium() -> None:
    with _setup_lock():
        _bootstrap().ensure_chromium()


def pytest_runtest_setup(item):
    if item.get_closest_marker("e2e"):
        _chromium()


# -- the session's local stacks ---------------------------------------------------------------
_running_session_stacks = {}  # fixture name -> RunningStack, until its tests are done


@pytest.fixture(scope="session")
def local_stack(tmp_path_factory):
    """One local stack for the session's integration and e2e tests (synthetic data seeded).
    Shared: delete the keys you create (open mode comes back once none is left)."""
    _browser_assets()
    stack = start_stack(tmp_path_factory.mktemp("stack") / "data")
    _running_session_stacks["local_stack"] = stack
    yield stack
    stop_stack(stack)
    assert_no_access_denied(stack)


@pytest.fixture(scope="session")
def stack_without_fanout(tmp_path_factory):
    """A second stack whose collector does not run the live fan-out, for tests that drive the
    publisher themselves and must see only their own messages."""
    _browser_assets()
    stack = start_stack(tmp_path_factory.mktemp("quiet-stack") / "data", env={"TRADOWIX_LIVE_FANOUT": "off"})
    _running_session_stacks["stack_without_fanout"] = stack
    yield stack
    stop_stack(stack)
    assert_no_access_denied(stack)


@pytest.hookimpl(trylast=True)
def pytest_runtest_teardown(item, nextitem):
    """The last test of a session stack's group has run (its tests run one after the other, on
    one worker): stop the stack now rather than at the end of the run, since an idle stack still
    collects, writes and snapshots (seconds of CPU a minute)."""
    stack = _session_stack(item)
    grouped = not hasattr(item.config, "workerinput") or getattr(item.config.option, "loadgroup", False)
    if (
        stack in _running_session_stacks
        and grouped
        and (nextitem is None or _session_stack(nextitem) != stack)
    ):
        stop_stack(_running_session_stacks.pop(stack))


@pytest.fixture
def stacks():
    """(start_stack, stop_stack) for tests about a stack's own start, restart or options."""
    return start_stack, stop_stack


# -- markers, groups and order ----------------------------------------------------------------
# Folders whose files must declare their marker (tests/faults: collector processes and stacks).
MARKER_OF_FOLDER = {"integration": "integration", "faults": "integration", "e2e": "e2e"}
# The more specific first: test_ws_live.py points its `local_stack` at `stack_without_fanout`.
SESSION_STACKS = ("stack_without_fanout", "local_stack")


def _layer(item) -> str | None:
    try:
        return Path(item.path).resolve().relative_to(TESTS).parts[0]
    except ValueError:
        return None


def _declares(module, marker: str) -> bool:
    marks = getattr(module, "pytestmark", [])
    marks = marks if isinstance(marks, list) else [marks]
    return any(getattr(m, "name", None) == marker for m in marks)


_GIVEN_WHEN_THEN = re.compile(r"\b(given|when)\b.*\bthen\b", re.IGNORECASE | re.DOTALL)


def _given_when_then(item) -> bool:
    """The module docstring says given/when/then, or the test itself does (docstring or comments)."""
    if not isinstance(item, pytest.Function) or _GIVEN_WHEN_THEN.search(item.module.__doc__ or ""):
        return True
    try:
        source = inspect.getsource(item.obj)
    except (OSError, TypeError):
        return True
    return bool(_GIVEN_WHEN_THEN.search(source))


def _session_stack(item) -> str | None:
    return next((name for name in SESSION_STACKS if name in item.fixturenames), None)


def _uses_module_fixture(item) -> bool:
    defs = getattr(getattr(item, "_fixtureinfo", None), "name2fixturedefs", {})
    return any(d.scope in ("module", "package") for fixturedefs in defs.values() for d in fixturedefs)


_files_with_module_fixtures: set[Path] = set()  # filled at collection


def _xdist_group(item) -> str | None:
    """Tests that share a session stack run on one worker, so each stack starts once; so do the
    tests of a file where module-scoped fixtures are used (a venv, a key): each worker that ran
    one of them would set them up again."""
    stack = _session_stack(item)
    if stack:
        return stack
    if item.path in _files_with_module_fixtures:
        return "module:" + str(item.path.relative_to(ROOT))
    return None


@pytest.hookimpl(tryfirst=True)  # before xdist reads the groups
def pytest_collection_modifyitems(config, items):
    undeclared = set()
    # (a test may take its module fixture by name at run time: the whole file counts)
    _files_with_module_fixtures.update(item.path for item in items if _uses_module_fixture(item))
    for item in items:
        layer = _layer(item)
        if layer == "unit":
            item.add_marker(pytest.mark.unit)
        elif layer in MARKER_OF_FOLDER and not _declares(item.module, MARKER_OF_FOLDER[layer]):
            undeclared.add(
                f"{item.path.relative_to(ROOT)}: pytestmark = pytest.mark.{MARKER_OF_FOLDER[layer]}"
            )
        group = _xdist_group(item)
        if group:
            item.add_marker(pytest.mark.xdist_group(group))
    if undeclared:
        raise pytest.UsageError("test files without their marker:\n  " + "\n  ".join(sorted(undeclared)))
    unexplained = sorted({str(i.path.relative_to(ROOT)) for i in items if not _given_when_then(i)})
    if unexplained:
        warnings.warn(
            "tests that do not say given/when/then (in the module docstring, or the test's "
            "docstring or comments): " + ", ".join(unexplained),
            stacklevel=1,
        )
    # Longest work first, so that no worker ends with a long test while the others idle: the
    # session-stack groups (the biggest units xdist hands out), then the other integration and
    # browser tests (most start processes of their own), then unit files that share a module
    # fixture (one unit each), then the other unit tests, small units that fill the gaps at the
    # end. The sort is stable: files keep their order within each rank.
    rank = {name: i for i, name in enumerate(SESSION_STACKS)}

    def longest_first(item) -> int:
        stack = _session_stack(item)
        if stack:
            return rank[stack]
        if _layer(item) != "unit":
            return len(rank)
        return len(rank) + (1 if _xdist_group(item) else 2)

    items.sort(key=longest_first)


@pytest.hookimpl(trylast=True)
def pytest_collection_finish(session):
    """xdist marks a grouped test by suffixing its node id; if it did not (see the pytest pin
    in pyproject.toml), each worker would start its own session stacks: say so."""
    if not getattr(session.config.option, "loadgroup", False):
        return
    lost = [i.nodeid for i in session.items if _xdist_group(i) and "@" not in i.nodeid.rsplit("]", 1)[-1]]
    if lost:
        warnings.warn(
            f"xdist did not group {len(lost)} session-stack tests (pytest-xdist#1386?): "
            "each worker starts its own stacks",
            stacklevel=1,
        )


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_auto_num_workers(config):
    """`-n auto`: one worker more than there are cores, at most 4. A worker spends about a
    quarter of its time waiting (stacks starting, live streams, the browser), so on 2 cores a
    third worker keeps both busy: the whole suite took 264 s with 3 workers against 392 s with 2
    in back-to-back runs here (tests/README.md). More would mostly run more stacks at once."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(4, cores + 1))
