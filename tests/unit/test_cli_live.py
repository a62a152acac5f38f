"""`tradowix live SYM`: history from HTTP, then a signal line per closed bar from the WebSocket."""

from __future__ import annotations

import random

from chart_fakes import FakeDeployment
from tradowix_bot.cli.__main__ import main

KEY = "twk_" + "l" * 40


def history(n=100, end=1_710_000_000):
    rng, x, out = random.Random(3), 1.0, []
    for i in range(n):
        o = x
        x *= 1 + rng.gauss(0, 0.002)
        out.append(
            {
                "time": end - (n - i) * 60,
                "open": o,
                "high": max(o, x) + 0.001,
                "low": min(o, x) - 0.001,
                "close": x,
            }
        )
    return out


def run(capsys, *argv):
    try:
        code = main(list(argv))
    except SystemExit as exc:
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


def test_live_prints_a_signal_for_each_closed_bar(capsys, monkeypatch):
    monkeypatch.setenv("TRADOWIX_CHART_API_KEY", KEY)
    with FakeDeployment({"BTCUSD-OTC": history()}, key=KEY, bars_per_connection=5) as deployment:
        code, out, err = run(
            capsys, "live", "BTCUSD-OTC", "--url", deployment.url, "--min-confidence", "0", "--max-bars", "3"
        )
        subscribes = deployment.live.subscribes
    assert code == 0, err
    lines = out.strip().splitlines()
    assert len(lines) == 3 and all("BTCUSD-OTC  60s" in line for line in lines)
    assert all(("CALL" in line or "PUT" in line) and "conf " in line for line in lines)
    assert "BTCUSD-OTC: 100 bars of history loaded" in err
    assert subscribes[0] == {"type": "subscribe", "symbol": "BTCUSD-OTC", "timeframe": 60}


def test_live_without_a_valid_key_is_one_line(capsys):
    with FakeDeployment({"BTCUSD-OTC": history()}, key=KEY) as deployment:
        code, out, err = run(capsys, "live", "BTCUSD-OTC", "--url", deployment.url, "--key", "twk_bad")
    assert code == 1 and err == "error: HTTP 401 invalid_key: API key invalid or disabled\n"


def test_live_from_the_upstream_with_a_refused_token_is_one_line(capsys, monkeypatch):
    # given: the owner's mode (no deployment URL) pointed at a stand-in upstream that refuses the token
    from tradowix_bot.collector import Clock
    from upstream_standin import StandinUpstream

    monkeypatch.delenv("TRADOWIX_CHART_URL", raising=False)
    upstream = StandinUpstream(Clock()).start()
    try:
        monkeypatch.setenv("TRADOWIX_WS_URL", upstream.url)
        # when
        code, _, err = run(capsys, "live", "BTCUSD-OTC", "--token", "secret-session")
    finally:
        upstream.stop()
    # then: one clear line, exit 1, and the token is never echoed
    errors = [line for line in err.splitlines() if line.startswith("error")]
    assert code == 1 and len(errors) == 1 and errors[0].startswith("error: upstream: the upstream refused")
    assert "Traceback" not in err
    assert "secret-session" not in err


def test_live_with_nothing_to_connect_to(capsys, monkeypatch):
    monkeypatch.delenv("TRADOWIX_CHART_URL", raising=False)
    monkeypatch.delenv("TRADOWIX_SESSION_TOKEN", raising=False)
    code, _, err = run(capsys, "live", "BTCUSD-OTC")
    assert code == 1 and err == "error: no deployment: pass --url or set TRADOWIX_CHART_URL\n"


def test_verbose_shows_bar_updates_and_bars_without_a_trade(capsys):
    with FakeDeployment({"BTCUSD-OTC": history()}, key=KEY, bars_per_connection=5) as deployment:
        code, out, _ = run(
            capsys,
            "live",
            "BTCUSD-OTC",
            "--url",
            deployment.url,
            "--key",
            KEY,
            "--verbose",
            "--min-confidence",
            "1",
            "--max-bars",
            "2",
        )
    assert code == 0
    lines = out.strip().splitlines()
    # The fake server never closes its history's last bar: the client hands that one over closed
    # from /api/candles first (it was already loaded, so it gets no signal line).
    assert sum("bar closed" in line for line in lines) == 3
    # a line per closed bar, trade or not (verbose prints the bars without a trade too)
    assert sum(("no trade" in line) or ("CALL" in line) or ("PUT" in line) for line in lines) == 2
    assert any("no trade" in line for line in lines)


def test_live_for_a_symbol_without_data_ends_with_one_line_instead_of_waiting(capsys):
    # given a deployment that has no FOO-OTC (REST 404, and the stream answers its subscribe no_data)
    with FakeDeployment({"BTCUSD-OTC": history()}, key=KEY, errors={"FOO-OTC": "no_data"}) as deployment:
        # when the partner streams it
        code, out, err = run(capsys, "live", "FOO-OTC", "--url", deployment.url, "--key", KEY)
    # then the command ends with the server's answer, exit 1
    assert code == 1 and out == ""
    assert err.splitlines()[-1] == "error: HTTP 404 no_data: FOO-OTC 60s: FOO-OTC: no_data"
