"""`tradowix archive --token X` when the upstream cannot be reached (offline, refused): one line,
exit 1, and nothing written (issue 15)."""

from __future__ import annotations

import pytest
from tradowix_bot.cli.__main__ import main


@pytest.mark.parametrize(
    "url, reason",
    [
        ("ws://127.0.0.1:9", "Connect call failed"),  # nothing listens
        ("wss://upstream.invalid/ws", "gaierror"),  # the name does not resolve (offline)
    ],
    ids=["refused", "offline"],
)
def test_archive_without_an_upstream_is_one_line_and_writes_nothing(tmp_path, capsys, url, reason):
    # given an owner's token but no reachable upstream
    candles = tmp_path / "candles"
    # when the owner archives into the original's files
    code = main(["archive", "--token", "X", "--hours", "1", "--candles-dir", str(candles), "--url", url])
    out, err = capsys.readouterr()
    # then one line says the upstream could not be reached, and no file was written
    assert code == 1 and out == "" and err.count("\n") == 1, err
    assert err.startswith("error: upstream: cannot connect to the upstream: ") and reason in err
    assert err.rstrip().endswith("nothing was archived")
    assert not candles.exists()
    # and the token is not echoed
    assert "X\n" not in err and "session-token" not in err


def test_the_collector_container_has_what_collect_checks_for():
    # given the collector container's requirements (it installs the package with --no-deps)
    from pathlib import Path

    from tradowix_bot.cli.__main__ import EXTRA_OF_COMMAND, REQUIRED_OF_EXTRA

    root = Path(__file__).resolve().parents[2]
    lines = (root / "infra/collector/requirements.txt").read_text().splitlines()
    lines += (root / "layers/core/requirements.txt").read_text().splitlines()
    names = {line.split(">")[0].split("=")[0].split("[")[0].strip().lower() for line in lines}
    installed = {n.replace("-", "_") for n in names if n and not n.startswith(("#", "-r"))}
    # then every module `collect` checks for before running is installed there
    assert set(REQUIRED_OF_EXTRA[EXTRA_OF_COMMAND["collect"]]) <= installed
