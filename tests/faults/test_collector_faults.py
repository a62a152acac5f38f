"""Fault injection, end to end: collector processes (the real `collect` command) on a market
clock running 30x, fed by a stand-in Tradowix upstream; a partner's bot reads /api/candles
through the partner API as fast as it can, and subscribes over the WebSocket routes at the end.
Every answer is judged against the oracle (the synthetic market's bars, from the very ticks
the upstream sent): after each fault the served data is right again within seconds, and no
closed bar is lost, duplicated or wrong. Each scenario writes its figures to
test-artifacts/fault-figures.json (and prints them with -s).

(The frozen-WebSocket scenario, a SIGSTOPped gateway, is the live fan-out's: tests/integration.)
"""

from __future__ import annotations

import json
import time

import pytest
from polling import eventually
from rig import LEASE, minute_of, record, wrong_closed

pytestmark = pytest.mark.integration

SYMBOL = "EURUSD-OTC"


def assert_ws_history_right(rig, symbol: str) -> None:
    """A partner subscribing now gets a history whose bars are the market's own (the newest
    may still be forming)."""
    history = rig.partner.ws_history(symbol)
    assert history["candles"]
    assert not wrong_closed({"candles": history["candles"], "last_closed": False}, symbol, rig.market)


def assert_no_loss(figures) -> None:
    assert (figures.lost, figures.duplicated, figures.wrong) == (0, 0, 0), figures
    assert figures.recovery_seconds is not None, figures


def test_collector_sigkill_mid_minute_then_restart(rig):
    r = rig()
    # given a collector streaming, and a partner's bot reading
    first = r.collector("collector-a", symbols=SYMBOL)
    first.wait_for("history repaired")
    poller = r.poller([SYMBOL])
    r.wait_market(60)
    # when it is killed (SIGKILL) mid-minute, and its supervisor starts it again
    fault = r.to_second(30)
    first.kill()
    r.wait_market(15)
    restarted = r.clock.now()
    again = r.collector("collector-a", symbols=SYMBOL)  # same owner: its lease is its own at once
    again.wait_for("history repaired")
    r.wait_market(100)
    poller.stop()
    figures = r.assess("collector SIGKILL mid-minute", SYMBOL, poller.polls[SYMBOL], fault)
    figures.extra["from_restart_s"] = r.assess("", SYMBOL, poller.polls[SYMBOL], restarted).recovery_seconds
    record(figures)
    # then no closed bar was lost, duplicated or wrong, and the data was right again
    assert_no_loss(figures)
    assert_ws_history_right(r, SYMBOL)


def test_collector_sigterm_mid_minute_then_restart(rig):
    r = rig()
    first = r.collector("collector-a", symbols=SYMBOL)
    first.wait_for("history repaired")
    poller = r.poller([SYMBOL])
    r.wait_market(60)
    # when it is stopped (SIGTERM) mid-minute
    fault = r.to_second(30)
    assert first.terminate() == 0
    # then at once partners see it not live, and no forming bar
    status = r.partner.live_status()
    assert status["live"] is False and status["upstream"]["connected"] is False
    assert r.partner.candles(SYMBOL)["last_closed"] is True
    r.wait_market(15)
    restarted = r.clock.now()
    again = r.collector("collector-a", symbols=SYMBOL)
    again.wait_for("history repaired")
    r.wait_market(100)
    poller.stop()
    figures = r.assess("collector SIGTERM mid-minute", SYMBOL, poller.polls[SYMBOL], fault)
    figures.extra["from_restart_s"] = r.assess("", SYMBOL, poller.polls[SYMBOL], restarted).recovery_seconds
    record(figures)
    assert_no_loss(figures)
    assert_ws_history_right(r, SYMBOL)


def test_link_drop_at_second_40_with_a_fast_reconnect(rig):
    r = rig()
    # given a collector streaming, and a partner's bot reading
    collector = r.collector("collector-a", symbols=SYMBOL)
    collector.wait_for("history repaired")
    poller = r.poller([SYMBOL])
    r.wait_market(60)
    # when the upstream drops every link at second 40 (the collector is back within ~0.6 s)
    fault = r.to_second(40)
    dropped = minute_of(fault)
    connections = r.upstream.connections
    r.upstream.drop_links()
    r.wait_market(100)
    poller.stop()
    # then it reconnected, and no closed bar was lost, duplicated or wrong
    assert r.upstream.connections > connections
    figures = r.assess("link drop at second 40, fast reconnect", SYMBOL, poller.polls[SYMBOL], fault)
    # the dropped minute was served, right, how many seconds after it ended
    served = [
        t
        for t, a in poller.polls[SYMBOL]
        if dropped in [c["time"] for c in a["candles"]] and t > dropped + 60
    ]
    figures.extra["dropped_minute_back_after_its_end_s"] = round(min(served) - (dropped + 60), 1)
    record(figures)
    assert_no_loss(figures)
    assert_ws_history_right(r, SYMBOL)


def test_upstream_refusing_the_token_then_accepting_it(rig):
    r = rig()
    collector = r.collector("collector-a", "--auth-backoff", "60", symbols=SYMBOL)
    collector.wait_for("history repaired")
    poller = r.poller([SYMBOL])
    r.wait_market(30)
    # when the upstream starts refusing the session token (and drops the links)
    r.upstream.accept_tokens = set()
    fault = r.clock.now()
    r.upstream.drop_links()
    deadline = time.monotonic() + 20
    while (status := r.partner.live_status())["upstream"]["last_error"] != "upstream_auth_failed":
        assert time.monotonic() < deadline, status
        time.sleep(0.05)
    # then partners see a code, not live, never the upstream's text or the token
    assert status["live"] is False and "good-token" not in json.dumps(status)
    # when it accepts the token again
    r.wait_market(30)
    accepted = r.clock.now()
    r.upstream.accept_tokens = {"good-token"}
    r.wait_market(150)
    poller.stop()
    figures = r.assess("upstream refuses the token, then accepts it", SYMBOL, poller.polls[SYMBOL], accepted)
    figures.extra["refused_for_s"] = round(accepted - fault, 1)
    record(figures)
    assert_no_loss(figures)
    assert r.partner.live_status()["live"] is True


def test_a_second_collector_takes_over_when_the_first_is_killed(rig):
    r = rig()
    first = r.collector("collector-a", symbols=SYMBOL)
    first.wait_for("history repaired")
    second = r.collector("collector-b", symbols=SYMBOL)
    poller = r.poller([SYMBOL])
    r.wait_market(60)
    assert r.lease_holder(SYMBOL) == "collector-a" and "lease acquired" not in second.text()
    # when the lease holder is killed
    fault = r.to_second(30)
    first.kill()
    killed_wall = time.monotonic()
    while r.lease_holder(SYMBOL) != "collector-b":
        assert time.monotonic() - killed_wall < 30, second.text()[-2000:]
        time.sleep(0.01)
    took = r.clock.now() - fault
    second.wait_for("history repaired")
    r.wait_market(100)
    poller.stop()
    figures = r.assess(
        "second collector takes over (SIGKILL of the first)", SYMBOL, poller.polls[SYMBOL], fault
    )
    figures.extra["takeover_s"] = round(took, 1)
    figures.extra["takeover_wall_s"] = round(r.clock.wall(took), 2)
    record(figures)
    # then it took over within the lease bound (loose, as below: requests take wall seconds)
    # 10 wall seconds allowed for a scheduler that starves the collectors (measured: 12.6 wall s
    # at load 5-8 on 2 cores, against 6.9 at load 7 without other tests beside)
    assert took <= 2 * LEASE + LEASE / 3 + r.clock.slack(10)
    assert_no_loss(figures)


def test_garbage_replay_input(rig, tmp_path):
    r = rig()
    now = minute_of(r.clock.now())
    t0 = now - 600
    replay = tmp_path / "replay"
    replay.mkdir()
    good = [{"time": t0 + 60 * i, "open": 1.1, "high": 1.2, "low": 1.0, "close": 1.15} for i in range(5)]
    (replay / "GOOD-OTC.json").write_text(json.dumps(good))
    (replay / "DUP-OTC.json").write_text(
        "[\n" + ",\n".join(json.dumps(b) for b in (good[0], good[1], good[0])) + "\n]\n"
    )
    (replay / "DUPCSV-OTC.csv").write_text(f"time,open,high,low,close\n{t0},1,1,1,1\n{t0},2,2,2,2\n")
    (replay / "JUNK-OTC.json").write_text('[{"time": "yesterday", "open": -1}')
    # when a collector replays them (and is left running for 4 minutes of market time)
    collector = r.collector(
        "collector-replay",
        "--replay-dir",
        str(replay),
        source="replay",
        symbols="GOOD-OTC,DUP-OTC,DUPCSV-OTC,JUNK-OTC",
    )
    collector.wait_for("history repaired")
    r.wait_market(4 * 60)
    status = r.partner.live_status()["upstream"]["symbols"]
    log = collector.text()
    collector.stop()
    # then the good file is stored, whole; nothing of the bad ones
    assert [b[0] for b in r.stored("GOOD-OTC")] == [b["time"] for b in good]
    assert all(not r.stored(s) for s in ("DUP-OTC", "DUPCSV-OTC", "JUNK-OTC"))
    # and partners see each bad symbol failed, with a code
    for symbol in ("DUP-OTC", "DUPCSV-OTC", "JUNK-OTC"):
        assert status[symbol]["state"] == "failed" and status[symbol]["error"] == "replay_input_invalid"
    assert status["GOOD-OTC"]["error"] is None
    # and the log names file and line, a few lines per bad file (no flood, no traceback)
    assert "DUP-OTC.json:4: duplicate time" in log and "DUPCSV-OTC.csv:3: duplicate time" in log
    for symbol in ("DUP-OTC", "DUPCSV-OTC", "JUNK-OTC"):
        assert sum(f'"symbol":"{symbol}"' in line for line in log.splitlines()) <= 6
    assert "Traceback" not in log
    record_replay = {"scenario": "garbage replay input", "lost": 0, "duplicated": 0, "wrong": 0}
    print("\nFAULT FIGURES", json.dumps(record_replay))


def test_a_truncated_day_object_is_served_around_and_rebuilt(rig):
    from tradowix_bot.server import aws
    from tradowix_bot.server.store import CandleStore, day_of, object_key

    r = rig()
    # given 14 hours of stored bars (yesterday's last 2, today's 12), today's object cut short
    now = minute_of(r.clock.now())
    store = CandleStore(r.names["CandlesBucket"])
    store.write(SYMBOL, [tuple(b) for b in r.market.bars(SYMBOL, now - 14 * 3600, now - 300)])
    s3 = aws.client("s3")
    key = object_key(SYMBOL, day_of(now))
    data = s3.get_object(Bucket=r.names["CandlesBucket"], Key=key)["Body"].read()
    s3.put_object(Bucket=r.names["CandlesBucket"], Key=key, Body=data[: len(data) // 2])
    # then partners still get an answer: the days that can be read (REST and WebSocket)
    status, body = r.partner.get("/api/candles", symbol=SYMBOL)
    assert status == 200 and body["candles"] and body["candles"][-1]["time"] < now - 12 * 3600
    assert r.partner.ws_history(SYMBOL)["candles"]
    # when the collector starts
    poller = r.poller([SYMBOL])
    started = r.clock.now()
    collector = r.collector("collector-a", "--backfill-days", "1", symbols=SYMBOL)
    collector.wait_for("history repaired")
    r.wait_market(90)
    poller.stop()
    # then it found the day, rebuilt it from the upstream's history, and reported it
    log = collector.text()
    assert log.count("stored day cannot be read; rebuilding it") == 1  # found once, no failing loop
    assert "repair failed" not in log and "Traceback" not in log
    figures = r.assess("truncated day object", SYMBOL, poller.polls[SYMBOL], started, since=now - 14 * 3600)
    record(figures)
    assert_no_loss(figures)
    stored = r.stored(SYMBOL)
    assert stored[0][0] == now - 14 * 3600 and stored[-1][0] >= now
    assert_ws_history_right(r, SYMBOL)


def test_three_collectors_thirty_symbols_one_killed(rig):
    from tradowix_bot.symbols import SymbolInfo

    infos = tuple(SymbolInfo(f"S{i:02d}-OTC", f"S{i:02d}", "other", 4, 10.0 + i, 0.0004) for i in range(30))
    names = [i.symbol for i in infos]
    r = rig(symbols=infos)
    # given three collector processes for the same 30 symbols
    collectors = [r.collector(f"collector-{n}", symbols=",".join(names)) for n in "abc"]
    for c in collectors:
        c.wait_for("history repaired")
    # (the first to start takes them all, then hands the excess over as the others join)
    began = time.monotonic()
    while True:
        holders = r.lease_holders()
        shares = {c.name: sorted(s for s, h in holders.items() if h == c.name) for c in collectors}
        if all(0 < len(v) <= 10 for v in shares.values()) and sum(len(v) for v in shares.values()) == 30:
            break
        assert time.monotonic() - began < 60, (shares, collectors[0].text()[-6000:])
        time.sleep(0.1)
    settled = r.clock.slack(time.monotonic() - began)
    victim = collectors[0]
    orphans = shares[victim.name]
    poller = r.poller(orphans[:4])
    r.wait_market(30)
    # when one of them is killed (SIGKILL) mid-minute
    fault = r.to_second(30)
    victim.kill()
    killed_wall = time.monotonic()
    while any(r.lease_holders().get(s) in (None, victim.name) for s in orphans):
        assert time.monotonic() - killed_wall < 30, r.lease_holders()
        time.sleep(0.01)
    took = r.clock.now() - fault
    r.wait_market(120)

    # (the minute the victim was building comes back by history repair; on a loaded machine that
    # can take longer than those 120 market seconds: wait for it, bounded, and report the figure)
    def polled_symbols_right_again() -> bool:
        return all(
            r.assess(s, s, poller.polls.get(s, []), fault, fresh_within=5.0).recovery_seconds is not None
            for s in orphans[:4]
        )

    eventually(polled_symbols_right_again, within=90, what="the taken-over symbols served right", interval=1)
    poller.stop()
    # then its symbols were taken over within the lease bound: the lease and one renewal round,
    # plus that round's requests, which take wall seconds on a loaded machine (30 market seconds
    # each here). Loose on purpose: the exact bound is asserted on a ManualClock
    # (tests/unit/test_collector_scale_out.py); this catches a takeover that waits for TTLs.
    # 10 wall seconds allowed for a scheduler that starves the collectors (measured: 12.6 wall s
    # at load 5-8 on 2 cores, against 6.9 at load 7 without other tests beside)
    assert took <= 2 * LEASE + LEASE / 3 + r.clock.slack(10)
    assert {r.lease_holder(s) for s in orphans} <= {"collector-b", "collector-c"}
    # and no symbol lost, duplicated or got a wrong closed bar (stored, and as served)
    total = {"lost": 0, "duplicated": 0, "wrong": 0}
    recoveries = []
    unrecovered = {}
    for symbol in names:
        polls = poller.polls.get(symbol, [])
        # 90 symbol streams on two cores: a close may take a few wall seconds to be written
        figures = r.assess(symbol, symbol, polls, fault, fresh_within=5.0)
        for k in total:
            total[k] += getattr(figures, k)
        if polls:
            recoveries.append(figures.recovery_seconds)
            if figures.recovery_seconds is None:
                unrecovered[symbol] = figures.extra.get("last_wrong_answer")
    from rig import Figures

    figures = Figures(
        "3 collectors, 30 symbols, one SIGKILLed",
        max(recoveries) if None not in recoveries else None,
        None if None in recoveries else round(r.clock.wall(max(recoveries)), 2),
        answers=sum(len(p) for p in poller.polls.values()),
        extra={
            "takeover_s": round(took, 1),
            "takeover_wall_s": round(r.clock.wall(took), 2),
            "shares": [len(v) for v in shares.values()],
            "shares_settled_after_s": round(settled, 1),
            **({"unrecovered": unrecovered} if unrecovered else {}),
        },
        **total,
    )
    record(figures)
    # Every taken-over symbol was served right again (waited for above). On two shared cores a
    # 30-symbol collector can write a minute late, so an answer may show a hole again for a few
    # seconds afterwards (the recovery figure is then None): what must hold is that no closed
    # bar was lost, duplicated or wrong, stored or served.
    assert (figures.lost, figures.duplicated, figures.wrong) == (0, 0, 0), figures
