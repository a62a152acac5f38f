"""Given candle series with and without an edge, when the backtest runs on them, then it reports
what the data shows: an edge where there is one, none where there is none, with textbook
intervals, seeded baselines, no trade across a gap, and a PNG plot."""

from __future__ import annotations

import random

from tradowix_bot.candles import Bar
from tradowix_bot.strategy import backtest


def bars_from(closes, start=1_710_000_000, tf=60):
    out, prev = [], closes[0]
    for i, c in enumerate(closes):
        out.append(Bar(start + i * tf, prev, max(prev, c), min(prev, c), c))
        prev = c
    return out


def zigzag(n):
    """Perfect mean reversion: every bar reverses the last one."""
    return bars_from([100 + (0.05 if i % 2 else -0.05) + 0.0001 * i for i in range(n)])


def random_walk(n, seed):
    rng, x, out = random.Random(seed), 100.0, []
    for _ in range(n):
        x *= 1 + rng.gauss(0, 0.001)
        out.append(round(x, 3))
    return bars_from(out)


def test_wilson_interval_matches_the_textbook_values():
    lo, hi = backtest.wilson(50, 100)
    assert round(lo, 4) == 0.4038 and round(hi, 4) == 0.5962
    assert backtest.wilson(0, 0) == (0.0, 1.0)
    lo, hi = backtest.wilson(10, 10)
    assert round(hi, 9) == 1.0 and round(lo, 3) == 0.722


def test_a_real_edge_is_reported_as_beating_the_baselines():
    report = backtest.run({"ZIG": zigzag(400)}, min_confidence=0.0, thresholds=[0.0])
    s = report.overall.scores
    assert s["strategy"].win_rate == 1.0 and s["repeat_last"].win_rate == 0.0
    # baselines traded exactly the strategy's bars
    assert {s[name].trades for name in s} == {s["strategy"].trades} and s["strategy"].trades > 300
    assert backtest.verdict(report.overall, 0.85).startswith("BEATS every baseline")
    assert "profitable at payout 85%" in backtest.verdict(report.overall, 0.85)


def test_no_edge_on_a_random_walk_is_said_plainly():
    report = backtest.run({f"RW{i}": random_walk(3000, seed=i) for i in range(3)}, min_confidence=0.2)
    text = backtest.format_report(report)
    assert "does NOT beat the baselines beyond the 95% interval" in text
    assert "NOT shown profitable" in text
    for symbol in ("RW0", "RW1", "RW2"):
        assert symbol in text
    # the sweep covers the default thresholds, and trades shrink as the threshold rises
    assert [ev.threshold for ev in report.sweep] == list(backtest.DEFAULT_THRESHOLDS)
    counts = [ev.scores["strategy"].trades for ev in report.sweep]
    assert counts == sorted(counts, reverse=True) and counts[0] > counts[-1]


def test_random_baseline_is_fixed_by_its_seed():
    data = {"RW": random_walk(2000, seed=5)}
    a = backtest.run(data, seed=1).overall.scores["random"]
    b = backtest.run(data, seed=1).overall.scores["random"]
    c = backtest.run(data, seed=2).overall.scores["random"]
    assert (a.wins, a.losses) == (b.wins, b.losses) != (c.wins, c.losses)


def test_trades_never_span_a_gap_and_flat_outcomes_are_draws():
    bars = random_walk(300, seed=9)
    gapped = bars[:150] + [Bar(b.time + 3600, *b[1:]) for b in bars[150:]]
    full = backtest.opportunities("X", bars, 60, 1, 7)
    cut = backtest.opportunities("X", gapped, 60, 1, 7)
    assert len(cut) == len(full) - 1  # the one bar whose next bar is across the gap
    flat = bars_from([100.0] * 60)
    opps = backtest.opportunities("F", flat, 60, 1, 7)
    ev = backtest.evaluate(opps, 0.0, 0.85)
    assert ev.scores["strategy"].wins == 0 and ev.scores["strategy"].losses == 0


def test_longer_expiry_needs_more_bars_ahead():
    bars = random_walk(200, seed=4)
    assert (
        len(backtest.opportunities("X", bars, 60, 5, 7))
        == len(backtest.opportunities("X", bars, 60, 1, 7)) - 4
    )


def test_plot_is_a_png(tmp_path):
    report = backtest.run({"RW": random_walk(600, seed=2)})
    path = backtest.plot(report, tmp_path / "out" / "bt.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 10_000
