"""The leaderboard's statistics: the same maximum likelihood as an independent algorithm, FastChat's tie
convention, honest intervals on battles from known strengths, ranks from intervals, and style control."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pytest

from zhbench.workbench.session.arena.leaderboard import compute_leaderboard, select_outcomes
from zhbench.workbench.session.arena.simulate import simulated_outcomes
from zhbench.workbench.session.arena.style import StyleCounts
from zhbench.workbench.session.arena.votes import ArenaDataError, Outcome


def hunter_mm_ratings(outcomes: Sequence[Outcome]) -> dict[str, float]:
    """Bradley–Terry ratings by Hunter's MM algorithm (Ann. Statist. 2004, eq. 3), ties as half a win:
    γ_i ← W_i / Σ_j n_ij / (γ_i + γ_j), iterated to convergence; Elo scale, mean 1000."""
    names = sorted({o.model_a for o in outcomes} | {o.model_b for o in outcomes})
    index = {name: i for i, name in enumerate(names)}
    played = np.zeros((len(names), len(names)))
    points = np.zeros(len(names))
    for o in outcomes:
        i, j = index[o.model_a], index[o.model_b]
        played[i, j] += 1
        played[j, i] += 1
        score = {"a": 1.0, "b": 0.0, "tie": 0.5, "bothbad": 0.5}[o.verdict]
        points[i] += score
        points[j] += 1.0 - score
    gamma = np.ones(len(names))
    for _ in range(100_000):
        updated = points / (played / (gamma[:, None] + gamma[None, :])).sum(axis=1)
        updated /= math.exp(np.log(updated).mean())
        if np.abs(updated - gamma).max() < 1e-14:
            break
        gamma = updated
    rating = 400 * np.log10(gamma)
    return dict(zip(names, rating - rating.mean() + 1000, strict=True))


def ratings(outcomes: Sequence[Outcome], **options: object) -> dict[str, float]:
    board = compute_leaderboard(outcomes, rounds=0, **options)
    return {row.model: row.rating for row in board.models}


def test_ratings_are_the_maximum_likelihood_an_independent_algorithm_finds() -> None:
    outcomes = simulated_outcomes([1250, 1100, 1050, 1000, 900, 700], 3000, seed=11, tie_rate=0.15)
    outcomes += [Outcome("m00", "m05", "bothbad"), Outcome("m03", "m01", "bothbad")]
    ours, reference = ratings(outcomes), hunter_mm_ratings(outcomes)
    assert ours.keys() == reference.keys()
    assert max(abs(ours[name] - reference[name]) for name in ours) < 1e-3


def test_a_tie_is_half_a_win_and_both_bad_is_a_tie() -> None:
    # x scores 3 wins + 2 halves = 4 of 6 against y: P(x beats y) = 2/3, so x is 400·log10(2) above y
    battles = [Outcome("x", "y", "a")] * 2 + [Outcome("y", "x", "b"), Outcome("x", "y", "b")]
    with_ties = ratings([*battles, Outcome("x", "y", "tie"), Outcome("y", "x", "tie")])
    with_both_bad = ratings([*battles, Outcome("x", "y", "bothbad"), Outcome("y", "x", "bothbad")])
    assert with_ties["x"] - with_ties["y"] == pytest.approx(400 * math.log10(2), abs=1e-3)
    assert with_both_bad == pytest.approx(with_ties, abs=1e-6)
    assert with_ties["x"] + with_ties["y"] == pytest.approx(2000)
    board = compute_leaderboard([*battles, Outcome("x", "y", "bothbad")], rounds=0)
    x = next(row for row in board.models if row.model == "x")
    assert (x.battles, x.wins, x.ties, x.losses) == (5, 3, 1, 1)


def test_the_anchor_model_is_at_1000_and_the_differences_stay() -> None:
    outcomes = simulated_outcomes([1200, 1000, 900, 800], 2000, seed=3)
    centred = compute_leaderboard(outcomes, rounds=20)
    anchored = compute_leaderboard(outcomes, rounds=20, anchor="m02")
    rows = {row.model: row for row in anchored.models}
    assert rows["m02"].rating == pytest.approx(1000) and rows["m02"].ci_low == rows["m02"].ci_high == 1000
    shift = rows["m00"].rating - next(r.rating for r in centred.models if r.model == "m00")
    assert all(rows[row.model].rating - row.rating == pytest.approx(shift) for row in centred.models)
    with pytest.raises(ValueError, match="no battles of 'nobody'"):
        compute_leaderboard(outcomes, anchor="nobody")


def test_simulated_strengths_are_recovered_and_lie_inside_the_intervals() -> None:
    true = np.array([1240, 1160, 1080, 1000, 920, 840, 760])  # mean 1000, like the ratings
    covered = total = 0
    for simulation in range(8):
        board = compute_leaderboard(simulated_outcomes(true.tolist(), 2500, seed=simulation), seed=simulation)
        assert [row.model for row in board.models] == [f"m{i:02d}" for i in range(len(true))]  # the true order
        for row in board.models:
            covered += row.ci_low <= true[int(row.model[1:])] <= row.ci_high
            total += 1
    assert covered / total >= 0.9


def test_ranks_come_from_the_intervals() -> None:
    board = compute_leaderboard(simulated_outcomes([1300, 1300, 800], 3000, seed=5))
    assert sorted(row.rank for row in board.models) == [1, 1, 3]  # the two equals share the top rank


def test_the_bootstrap_is_reproducible_with_its_seed() -> None:
    outcomes = simulated_outcomes([1100, 1000, 900], 600, seed=2)
    same = [compute_leaderboard(outcomes, rounds=30, seed=7).models for _ in range(2)]
    other = compute_leaderboard(outcomes, rounds=30, seed=8).models
    assert same[0] == same[1] and same[0] != other


def test_win_rates_and_predictions() -> None:
    outcomes = [
        Outcome("x", "y", "a"),
        Outcome("y", "x", "a"),
        Outcome("x", "y", "tie"),
        Outcome("x", "z", "a"),
        Outcome("z", "y", "b"),
        Outcome("x", "z", "b"),
    ]
    board = compute_leaderboard(outcomes, rounds=0)
    assert board.win_rates["x"]["y"] == pytest.approx(1.5 / 3) and board.win_rates["y"]["x"] == pytest.approx(1.5 / 3)
    assert board.win_rates["z"]["x"] == pytest.approx(0.5) and board.win_rates["x"]["x"] is None
    assert board.win_rates["y"]["z"] == 1.0
    for a in board.predicted:
        for b, p in board.predicted[a].items():
            assert p + board.predicted[b][a] == pytest.approx(1.0)
    best, worst = board.models[0].model, board.models[-1].model
    assert board.predicted[best][worst] > 0.5


def test_named_and_leaked_battles_are_left_out_unless_asked() -> None:
    outcomes = [
        Outcome("x", "y", "a"),
        Outcome("x", "y", "a", anonymous=False),
        Outcome("x", "y", "b", leaked=True),
        Outcome("x", "y", "b", anonymous=False, leaked=True),
    ]
    default = select_outcomes(outcomes)
    assert (len(default.outcomes), default.named, default.leaked) == (1, 2, 1)
    assert len(select_outcomes(outcomes, include_named=True).outcomes) == 2
    assert len(select_outcomes(outcomes, include_named=True, include_leaked=True).outcomes) == 4


def styled_battles(count: int, seed: int) -> list[Outcome]:
    """Four equally good models, but m00 writes three times as long, and longer replies win more often."""
    rng = np.random.default_rng(seed)
    outcomes = []
    for _ in range(count):
        a, b = rng.choice(4, size=2, replace=False)
        length_a, length_b = (int(rng.integers(100, 400)) * (3 if side == 0 else 1) for side in (a, b))
        p_a = 1 / (1 + math.exp(-2.5 * (length_a - length_b) / (length_a + length_b)))
        verdict = "a" if rng.random() < p_a else "b"
        outcomes.append(
            Outcome(
                f"m{a:02d}",
                f"m{b:02d}",
                verdict,
                style_a=StyleCounts(length_a, 1, 2, 0),
                style_b=StyleCounts(length_b, 1, 2, 0),
            )
        )
    return outcomes


def test_style_control_holds_length_equal() -> None:
    outcomes = styled_battles(3000, seed=4)
    plain = compute_leaderboard(outcomes, rounds=20)
    controlled = compute_leaderboard(outcomes, rounds=20, style_control=True)
    assert plain.models[0].model == "m00" and plain.models[0].rank == 1
    assert plain.models[0].rating - plain.models[1].rating > 100  # length passed for quality
    assert all(row.ci_low <= 1000 <= row.ci_high and row.rank == 1 for row in controlled.models)
    effects = {effect.feature: effect for effect in controlled.style or []}
    assert list(effects) == ["length", "headers", "list_items", "bold"]
    assert effects["length"].ci_low > 50  # longer wins, by a clear margin
    assert effects["headers"].elo == pytest.approx(0, abs=1e-6)  # never differed: no effect
    assert plain.style is None


def test_style_control_needs_the_replies() -> None:
    with pytest.raises(ArenaDataError, match="2 of 2 battles have none"):
        compute_leaderboard([Outcome("x", "y", "a"), Outcome("y", "x", "a")], style_control=True)


def test_no_battles_is_an_empty_board() -> None:
    board = compute_leaderboard([])
    assert board.models == [] and board.to_json()["models"] == []
