"""A backtest that tells the truth about the built-in strategy.

Every bar after the warm-up whose next `expiry` bars exist without a gap is a trade
opportunity. The strategy trades the opportunities where its confidence reaches the
threshold; three naive baselines trade exactly the same bars:

- `always_call`: CALL every time;
- `repeat_last`: the direction of the signal bar itself (close vs open; a flat bar counts as CALL);
- `random`: a coin flip from a fixed seed (per symbol, per bar: the same bar gets the same flip
  whatever the threshold).

Win rate = wins / (wins + losses) (draws, refunded by most brokers, are counted apart; with
`tie_is_loss`, for brokers that keep the stake on a tie, an equal price is a loss), with a
95 % Wilson score interval. The verdict is conservative: the strategy "beats" the baselines
only if the lower end of its interval is above the upper end of every baseline's interval.
The result in stakes assumes a win pays `payout` (e.g. 0.85) and a loss costs the stake;
break-even win rate is 1 / (1 + payout).

The threshold sweep shows how the result moves with the threshold; reading off its best row
after the fact and calling that the strategy's edge overstates it (the best of several noisy
rows is better than its threshold deserves), so the report says so next to the sweep.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from . import builtin as strat

Z95 = 1.959963984540054
BASELINES = ("always_call", "repeat_last", "random")
DEFAULT_THRESHOLDS = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
MIN_TRADES_FOR_VERDICT = 30


def wilson(wins: int, n: int, z: float = Z95) -> tuple[float, float]:
    """95 % Wilson score interval of a proportion (a 6-line formula: no statistics package needed)."""
    if n == 0:
        return (0.0, 1.0)
    p = wins / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


@dataclass
class Score:
    wins: int = 0
    losses: int = 0
    draws: int = 0
    # result in stakes after each trade, in time order (for the cumulative plot)
    path: list[tuple[int, float]] = field(default_factory=list, repr=False)

    @property
    def trades(self) -> int:
        return self.wins + self.losses + self.draws

    @property
    def decided(self) -> int:
        return self.wins + self.losses

    @property
    def win_rate(self) -> float | None:
        return self.wins / self.decided if self.decided else None

    @property
    def interval(self) -> tuple[float, float]:
        return wilson(self.wins, self.decided)

    def result(self, payout: float) -> float:
        return self.wins * payout - self.losses

    def add(self, outcome: int, time: int, payout: float) -> None:
        """outcome: +1 win, -1 loss, 0 draw."""
        if outcome > 0:
            self.wins += 1
        elif outcome < 0:
            self.losses += 1
        else:
            self.draws += 1
        last = self.path[-1][1] if self.path else 0.0
        self.path.append((time, last + (payout if outcome > 0 else -1.0 if outcome < 0 else 0.0)))

    def merge(self, other: Score) -> None:
        self.wins += other.wins
        self.losses += other.losses
        self.draws += other.draws


@dataclass
class Opportunity:
    index: int
    time: int
    signal: strat.Signal
    move: int  # sign of (exit - entry): +1 up, -1 down, 0 flat
    baseline_direction: dict[str, str]


def opportunities(
    symbol: str, bars: Sequence[tuple], timeframe: int, expiry: int, seed: int
) -> list[Opportunity]:
    sigs = strat.signals(bars)
    coin = random.Random(f"{seed}:{symbol}")
    flips = [coin.random() < 0.5 for _ in bars]
    out = []
    for i in range(len(bars) - expiry):
        sig = sigs[i]
        if sig is None or sig.direction is None:
            continue
        t = bars[i][0]
        # Entry at the next bar's open, exit at the close of bar i+expiry; no gap in between.
        if bars[i + 1][0] != t + timeframe or bars[i + expiry][0] != t + expiry * timeframe:
            continue
        entry, exit_ = bars[i + 1][1], bars[i + expiry][4]
        move = (exit_ > entry) - (exit_ < entry)
        last_dir = strat.PUT if bars[i][4] < bars[i][1] else strat.CALL
        out.append(
            Opportunity(
                i,
                t,
                sig,
                move,
                {
                    "always_call": strat.CALL,
                    "repeat_last": last_dir,
                    "random": strat.CALL if flips[i] else strat.PUT,
                },
            )
        )
    return out


def _outcome(direction: str, move: int, tie_is_loss: bool = False) -> int:
    if move == 0:
        return -1 if tie_is_loss else 0
    return move if direction == strat.CALL else -move


@dataclass
class Evaluation:
    """Scores of the strategy and each baseline on the bars the strategy traded at one threshold."""

    threshold: float
    scores: dict[str, Score]  # "strategy" and each baseline


def evaluate(
    opps: Sequence[Opportunity], threshold: float, payout: float, tie_is_loss: bool = False
) -> Evaluation:
    scores = {name: Score() for name in ("strategy", *BASELINES)}
    for o in opps:
        if o.signal.confidence < threshold:
            continue
        scores["strategy"].add(_outcome(o.signal.direction, o.move, tie_is_loss), o.time, payout)
        for name in BASELINES:
            scores[name].add(_outcome(o.baseline_direction[name], o.move, tie_is_loss), o.time, payout)
    return Evaluation(threshold, scores)


def verdict(ev: Evaluation, payout: float) -> str:
    s = ev.scores["strategy"]
    if s.decided < MIN_TRADES_FOR_VERDICT:
        return f"too few trades ({s.decided}) to say anything"
    lo, hi = s.interval
    base_hi = max(ev.scores[b].interval[1] for b in BASELINES)
    base_lo = min(ev.scores[b].interval[0] for b in BASELINES)
    breakeven = 1 / (1 + payout)
    if lo > base_hi:
        text = "BEATS every baseline beyond the 95% interval"
    elif hi < base_lo:
        text = "is WORSE than every baseline beyond the 95% interval"
    else:
        text = "does NOT beat the baselines beyond the 95% interval (the intervals overlap)"
    if lo > breakeven:
        text += f"; profitable at payout {payout:.0%} (break-even {breakeven:.1%})"
    else:
        text += f"; NOT shown profitable at payout {payout:.0%} (break-even {breakeven:.1%})"
    return text


def short_verdict(ev: Evaluation) -> str:
    s = ev.scores["strategy"]
    if s.decided < MIN_TRADES_FOR_VERDICT:
        return "too few trades"
    lo, hi = s.interval
    if lo > max(ev.scores[b].interval[1] for b in BASELINES):
        return "BEATS baselines"
    if hi < min(ev.scores[b].interval[0] for b in BASELINES):
        return "WORSE than baselines"
    return "no edge (intervals overlap)"


@dataclass
class Report:
    timeframe: int
    expiry: int
    payout: float
    min_confidence: float
    thresholds: list[float]
    per_symbol: dict[str, Evaluation]  # at min_confidence
    overall: Evaluation  # at min_confidence, all symbols pooled
    sweep: list[Evaluation]  # overall, per threshold
    bars: dict[str, int]
    paths: dict[str, list[tuple[int, float]]]  # cumulative result over all symbols, time-ordered
    tie_is_loss: bool = False


def run(
    series: dict[str, Sequence[tuple]],
    *,
    timeframe: int = 60,
    expiry: int = 1,
    payout: float = 0.85,
    min_confidence: float = 0.3,
    thresholds: Sequence[float] = DEFAULT_THRESHOLDS,
    seed: int = 7,
    tie_is_loss: bool = False,
    progress: Callable[[str], None] | None = None,
) -> Report:
    if expiry < 1:
        raise ValueError("expiry must be at least 1 bar")
    all_opps: list[Opportunity] = []
    per_symbol = {}
    for n, (symbol, bars) in enumerate(sorted(series.items()), start=1):
        if progress:
            progress(f"[{n}/{len(series)}] {symbol}: {len(bars)} bars")
        opps = opportunities(symbol, bars, timeframe, expiry, seed)
        per_symbol[symbol] = evaluate(opps, min_confidence, payout, tie_is_loss)
        all_opps.extend(opps)
    all_opps.sort(key=lambda o: o.time)
    overall = evaluate(all_opps, min_confidence, payout, tie_is_loss)
    grid = sorted(set(thresholds) | {min_confidence})
    sweep = [evaluate(all_opps, t, payout, tie_is_loss) for t in grid]
    return Report(
        timeframe,
        expiry,
        payout,
        min_confidence,
        grid,
        per_symbol,
        overall,
        sweep,
        {s: len(b) for s, b in series.items()},
        {name: sc.path for name, sc in overall.scores.items()},
        tie_is_loss,
    )


# -- output ----------------------------------------------------------------------------------


def _pct(x: float | None) -> str:
    return "   -  " if x is None else f"{100 * x:5.1f}%"


def _row(label: str, s: Score, payout: float) -> str:
    lo, hi = s.interval
    ci = f"[{_pct(lo)}, {_pct(hi)}]" if s.decided else "[   -  ,    -  ]"
    return f"  {label:14} {s.trades:7d} {s.draws:6d} {_pct(s.win_rate):>7} {ci:>18} {s.result(payout):+9.1f}"


def format_report(report: Report) -> str:
    head = f"  {'':14} {'trades':>7} {'draws':>6} {'win':>7} {'95% CI (Wilson)':>18} {'result':>9}"
    lines = [
        f"Backtest: timeframe {report.timeframe}s, CALL/PUT at the next bar's open, expiry "
        f"{report.expiry} bar(s), payout {report.payout:.0%} (break-even win rate "
        f"{1 / (1 + report.payout):.1%}), min confidence {report.min_confidence:g}, "
        + ("a tie (equal price) counts as a LOSS" if report.tie_is_loss else "a tie is a draw (refunded)"),
        f"Data: {sum(report.bars.values())} bars over {len(report.bars)} symbol(s). "
        "Baselines trade the same bars as the strategy.",
        "",
    ]
    for symbol, ev in sorted(report.per_symbol.items()):
        lines += [f"{symbol}  ({report.bars[symbol]} bars)", head]
        lines += [_row(name, ev.scores[name], report.payout) for name in ("strategy", *BASELINES)]
        lines += [f"  -> strategy {verdict(ev, report.payout)}", ""]
    lines += ["ALL SYMBOLS", head]
    lines += [_row(name, report.overall.scores[name], report.payout) for name in ("strategy", *BASELINES)]
    lines += ["", "Sweep over --min-confidence (all symbols; baselines on the same bars):"]
    lines += [
        f"  {'min conf':>8} {'trades':>7} {'strategy':>8} {'95% CI':>18} {'best baseline':>22}  verdict"
    ]
    for ev in report.sweep:
        s = ev.scores["strategy"]
        lo, hi = s.interval
        best = max(BASELINES, key=lambda b: ev.scores[b].win_rate or 0.0)
        short = short_verdict(ev)
        lines.append(
            f"  {ev.threshold:8.2f} {s.trades:7d} {_pct(s.win_rate):>8} [{_pct(lo)}, {_pct(hi)}] "
            f"{best:>13} {_pct(ev.scores[best].win_rate):>8}  {short}"
        )
    lines += [
        f"  Warning: choosing the best of these {len(report.sweep)} rows after seeing them overstates the "
        "edge (the best of several noisy rows looks better than it is). Fix the threshold before looking, "
        "or check the chosen one on data it was not chosen on (e.g. a later period).",
    ]
    lines += [
        "",
        f"VERDICT (min confidence {report.min_confidence:g}, all symbols): the strategy "
        + verdict(report.overall, report.payout)
        + ".",
    ]
    return "\n".join(lines)


def plot(report: Report, path: Path) -> Path:
    """PNG: win rate vs confidence threshold (with intervals), and cumulative result."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(10, 9))
    xs = [ev.threshold for ev in report.sweep]
    colours = {
        "strategy": "tab:blue",
        "always_call": "tab:gray",
        "repeat_last": "tab:orange",
        "random": "tab:green",
    }
    for name in ("strategy", *BASELINES):
        ys, lo, hi = [], [], []
        for ev in report.sweep:
            s = ev.scores[name]
            rate = s.win_rate
            ys.append(100 * rate if rate is not None else math.nan)
            lo.append(100 * s.interval[0] if s.decided else math.nan)
            hi.append(100 * s.interval[1] if s.decided else math.nan)
        width = 2.2 if name == "strategy" else 1.2
        ax1.plot(xs, ys, marker="o", label=name, color=colours[name], linewidth=width)
        if name == "strategy":
            ax1.fill_between(xs, lo, hi, color=colours[name], alpha=0.15, label="strategy 95% CI")
    ax1.axhline(50, color="black", linewidth=0.8, linestyle=":", label="coin flip 50%")
    ax1.axhline(
        100 / (1 + report.payout), color="red", linewidth=0.8, linestyle="--", label="break-even at payout"
    )
    ax1.set_xlabel("--min-confidence threshold")
    ax1.set_ylabel("win rate (%)")
    ax1.set_title(
        f"Win rate vs confidence threshold (tf {report.timeframe}s, expiry {report.expiry} bar(s); "
        "baselines on the strategy's bars)"
    )
    ax1.legend(fontsize=8, loc="best")
    ax1.grid(alpha=0.3)
    for name in ("strategy", *BASELINES):
        points = report.paths[name]
        ax2.plot(range(len(points)), [v for _, v in points], label=name, color=colours[name])
    ax2.set_xlabel(f"trade number (all symbols, time order), min confidence {report.min_confidence:g}")
    ax2.set_ylabel(f"cumulative result (stakes, payout {report.payout:.0%})")
    ax2.set_title("Cumulative result")
    ax2.legend(fontsize=8)
    ax2.grid(alpha=0.3)
    fig.suptitle(f"Strategy (min confidence {report.min_confidence:g}): {short_verdict(report.overall)}")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
