"""The leaderboard: Bradley–Terry ratings with bootstrap intervals, ranks, counts and win rates, typed.

What a screen and ``zhbench leaderboard`` show: ``select_outcomes`` leaves out what does not count by
default (votes cast knowing the models, battles whose replies named their maker; FastChat does the same;
and a judge model's votes, which rank by a model's taste, not people's),
``compute_leaderboard`` does the statistics (``bradley_terry.py``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from zhbench.workbench.session.arena.style import STYLE_FEATURES
from zhbench.workbench.session.arena.votes import ArenaDataError, Outcome, Verdict

if TYPE_CHECKING:
    from zhbench.workbench.session.arena.bradley_terry import FloatArray, IntArray

#: side A's score: a tie and "both bad" are each half a win (FastChat's convention)
SCORE: dict[Verdict, float] = {"a": 1.0, "b": 0.0, "tie": 0.5, "bothbad": 0.5}
DEFAULT_ROUNDS = 100


@dataclass(frozen=True)
class Selection:
    """The battles that count, and how many were left out for each reason."""

    outcomes: list[Outcome]
    named: int  # cast knowing which model was which
    leaked: int  # blind, but a reply named its maker
    judged: int = 0  # voted by a judge model (``zhbench batch judge --to-votes``), not a person


def select_outcomes(
    outcomes: Iterable[Outcome],
    *,
    include_named: bool = False,
    include_leaked: bool = False,
    include_judge: bool = False,
) -> Selection:
    """The battles the ranking uses: people's blind and unleaked votes, plus named, leaked or a judge
    model's ones when asked."""
    kept: list[Outcome] = []
    named = leaked = judged = 0
    for outcome in outcomes:
        if outcome.source == "judge" and not include_judge:
            judged += 1
        elif not outcome.anonymous and not include_named:
            named += 1
        elif outcome.leaked and not include_leaked:
            leaked += 1
        else:
            kept.append(outcome)
    return Selection(kept, named, leaked, judged)


@dataclass(frozen=True)
class ModelRating:
    """One model's row: rating and 95% interval on the Elo scale, its rank from the intervals, its record."""

    model: str
    rating: float
    ci_low: float
    ci_high: float
    rank: int  # 1 + the number of models whose interval lies wholly above this one's
    battles: int
    wins: int
    ties: int  # ties and "both bad"
    losses: int


@dataclass(frozen=True)
class StyleEffect:
    """What a style feature is worth: Elo points for one standard deviation of its normalised difference."""

    feature: str
    elo: float
    ci_low: float
    ci_high: float


@dataclass(frozen=True)
class Leaderboard:
    models: list[ModelRating]  # best rating first
    #: ``win_rates[a][b]``: a's share of its battles against b, ties as half; None where they never met
    win_rates: dict[str, dict[str, float | None]]
    #: ``predicted[a][b]``: the probability that a beats b that the ratings give
    predicted: dict[str, dict[str, float]]
    battles: int
    rounds: int
    seed: int
    anchor: str | None
    #: with style control: the style coefficients (the ratings are then those with style held equal)
    style: list[StyleEffect] | None

    def to_json(self) -> dict[str, Any]:
        """The object ``zhbench leaderboard --json`` prints; scripts read these names."""
        return {
            "models": [asdict(row) for row in self.models],
            "win_rates": self.win_rates,
            "predicted": self.predicted,
            "battles": self.battles,
            "bootstrap": {"rounds": self.rounds, "seed": self.seed},
            "anchor": self.anchor,
            "style_control": self.style is not None,
            "style": None if self.style is None else [asdict(effect) for effect in self.style],
        }


def compute_leaderboard(
    outcomes: Sequence[Outcome],
    *,
    rounds: int = DEFAULT_ROUNDS,
    seed: int = 0,
    anchor: str | None = None,
    style_control: bool = False,
) -> Leaderboard:
    """Ratings of every model in ``outcomes`` with 95% intervals from ``rounds`` bootstrap refits
    (seeded: the same input and seed give the same numbers); ``rounds=0`` gives no interval.

    Ratings are centred on a mean of 1000, or put ``anchor`` at 1000. With ``style_control`` the replies'
    length and Markdown differences are covariates, and the ratings are those with style held equal.
    """
    import numpy as np

    from zhbench.workbench.session.arena import bradley_terry

    names = sorted({o.model_a for o in outcomes} | {o.model_b for o in outcomes})
    if anchor is not None and anchor not in names:
        raise ValueError(f"no battles of {anchor!r} to anchor the ratings on")
    if not names:
        return Leaderboard([], {}, {}, 0, rounds, seed, anchor, None)
    index = {name: position for position, name in enumerate(names)}
    count = len(outcomes)
    a = np.fromiter((index[o.model_a] for o in outcomes), dtype=np.int64, count=count)
    b = np.fromiter((index[o.model_b] for o in outcomes), dtype=np.int64, count=count)
    score = np.fromiter((SCORE[o.verdict] for o in outcomes), dtype=np.float64, count=count)
    models = len(names)
    if style_control:
        matchups = bradley_terry.Matchups(a, b, score, np.ones(count), _style_features(outcomes))
    else:
        matchups = bradley_terry.counted_matchups(a, b, score, models)
    estimate = bradley_terry.fit(matchups, models)
    refits = bradley_terry.bootstrap(matchups, models, rounds, seed, estimate) if rounds else estimate[None, :]
    anchor_index = None if anchor is None else index[anchor]
    rating = bradley_terry.elo(estimate[:models], anchor_index)
    low, high = np.percentile(bradley_terry.elo(refits[:, :models], anchor_index), [2.5, 97.5], axis=0)
    rank = 1 + (low[None, :] > high[:, None]).sum(axis=1)
    wins, ties, losses = _records(a, b, score, models)
    ranked = sorted(
        (
            ModelRating(
                model=name,
                rating=float(rating[i]),
                ci_low=float(low[i]),
                ci_high=float(high[i]),
                rank=int(rank[i]),
                battles=int(wins[i] + ties[i] + losses[i]),
                wins=int(wins[i]),
                ties=int(ties[i]),
                losses=int(losses[i]),
            )
            for i, name in enumerate(names)
        ),
        key=lambda row: -row.rating,
    )
    order = [index[row.model] for row in ranked]
    win_rate = _win_rates(a, b, score, models)
    predicted = bradley_terry.win_probability(rating)
    return Leaderboard(
        models=ranked,
        win_rates={
            names[i]: {names[j]: (None if np.isnan(win_rate[i, j]) else float(win_rate[i, j])) for j in order}
            for i in order
        },
        predicted={names[i]: {names[j]: float(predicted[i, j]) for j in order if j != i} for i in order},
        battles=count,
        rounds=rounds,
        seed=seed,
        anchor=anchor,
        style=None if not style_control else _style_effects(estimate[models:], refits[:, models:]),
    )


def _records(a: IntArray, b: IntArray, score: FloatArray, models: int) -> tuple[IntArray, IntArray, IntArray]:
    """Each model's wins, ties (both-bad included) and losses."""
    import numpy as np

    def per_model(a_mask: FloatArray, b_mask: FloatArray) -> IntArray:
        counts = np.bincount(a, a_mask, models) + np.bincount(b, b_mask, models)
        return np.asarray(np.rint(counts), dtype=np.int64)

    won, tied, lost = (score == 1.0).astype(float), (score == 0.5).astype(float), (score == 0.0).astype(float)
    return per_model(won, lost), per_model(tied, tied), per_model(lost, won)


def _win_rates(a: IntArray, b: IntArray, score: FloatArray, models: int) -> FloatArray:
    """``[i, j]``: model i's share of the points in its battles against j (ties as half); NaN if none."""
    import numpy as np

    cells = a * models + b
    as_a = np.bincount(cells, minlength=models * models).reshape(models, models).astype(np.float64)
    points_as_a = np.bincount(cells, weights=score, minlength=models * models).reshape(models, models)
    played = as_a + as_a.T
    points = points_as_a + (as_a - points_as_a).T  # as B, i scores what its opponent as A did not
    return np.divide(points, played, out=np.full_like(played, np.nan), where=played > 0)


def _style_features(outcomes: Sequence[Outcome]) -> FloatArray:
    """The style covariates of every battle; every battle must carry both sides' style counts."""
    import numpy as np

    from zhbench.workbench.session.arena.bradley_terry import style_features

    missing = sum(o.style_a is None or o.style_b is None for o in outcomes)
    if missing:
        raise ArenaDataError(
            f"style control needs both sides' replies, and {missing} of {len(outcomes)} battles have none "
            "(a battles file without conversation_a and conversation_b)"
        )
    side_a = np.array([o.style_a.as_tuple() for o in outcomes if o.style_a], dtype=np.float64)
    side_b = np.array([o.style_b.as_tuple() for o in outcomes if o.style_b], dtype=np.float64)
    return style_features(side_a.reshape(-1, len(STYLE_FEATURES)), side_b.reshape(-1, len(STYLE_FEATURES)))


def _style_effects(estimate: FloatArray, refits: FloatArray) -> list[StyleEffect]:
    """The style coefficients on the Elo scale, with their bootstrap intervals."""
    import numpy as np

    from zhbench.workbench.session.arena.bradley_terry import ELO_PER_UNIT

    low, high = np.percentile(refits * ELO_PER_UNIT, [2.5, 97.5], axis=0)
    return [
        StyleEffect(feature, float(estimate[i] * ELO_PER_UNIT), float(low[i]), float(high[i]))
        for i, feature in enumerate(STYLE_FEATURES)
    ]
