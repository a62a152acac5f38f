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
