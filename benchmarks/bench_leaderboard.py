"""Time to compute the leaderboard: 100,000 battles among 50 models, 100 bootstrap rounds.

The battles are drawn from known strengths (``workbench/session/arena/simulate.py``: ratings spread like
a real arena's, 10 % ties); what is timed is ``compute_leaderboard`` whole, as ``zhbench leaderboard``
runs it: counting the battles per pair and outcome, the maximum-likelihood fit, the bootstrap refits,
intervals, ranks, win rates and predictions. Importing numpy and scipy is paid before the timing. The
target is under 10 s. ``--style-control`` times the fit with style covariates instead (it cannot count
battles per pair: every refit is over all of them).

    python benchmarks/bench_leaderboard.py [--battles 100000] [--models 50] [--rounds 100] [--runs 3] [--style-control]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from zhbench.workbench.session.arena.leaderboard import compute_leaderboard
from zhbench.workbench.session.arena.simulate import simulated_outcomes
from zhbench.workbench.session.arena.style import StyleCounts
from zhbench.workbench.session.arena.votes import Outcome


def arena_like_ratings(models: int, seed: int) -> list[float]:
    """Ratings about as spread as a public arena's: a standard deviation of 150 Elo around 1000."""
    import numpy as np

    return (1000 + 150 * np.random.default_rng(seed).standard_normal(models)).tolist()


def with_styles(outcomes: list[Outcome], seed: int) -> list[Outcome]:
    """The same battles with random reply lengths and Markdown counts, for timing style control."""
    import numpy as np

    counts = np.random.default_rng(seed).integers(0, 800, size=(len(outcomes), 2, 4)).tolist()
    return [
        replace(outcome, style_a=StyleCounts(*a), style_b=StyleCounts(*b))
        for outcome, (a, b) in zip(outcomes, counts, strict=True)
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--battles", type=int, default=100_000)
    parser.add_argument("--models", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=100)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--style-control", action="store_true")
    args = parser.parse_args()

    outcomes = simulated_outcomes(arena_like_ratings(args.models, seed=0), args.battles, seed=1, tie_rate=0.1)
    if args.style_control:
        outcomes = with_styles(outcomes, seed=2)
    compute_leaderboard(outcomes[:100], rounds=1, style_control=args.style_control)  # numpy and scipy imported
    times = []
    for run in range(args.runs):
        start = time.perf_counter()
        board = compute_leaderboard(outcomes, rounds=args.rounds, seed=run, style_control=args.style_control)
        times.append(time.perf_counter() - start)
    widest = max(row.ci_high - row.ci_low for row in board.models)
    what = "style control" if args.style_control else "plain"
    print(
        f"{args.battles} battles, {args.models} models, {args.rounds} bootstrap rounds ({what}): "
        f"median {statistics.median(times):.2f} s, slowest {max(times):.2f} s over {args.runs} runs "
        f"(widest 95% interval {widest:.0f} Elo)"
    )


if __name__ == "__main__":
    main()
