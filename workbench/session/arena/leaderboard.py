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


#: ratings closer than this (Elo points) are equal: the fit's own precision is far finer, and no table
#: prints more than a tenth of a point
RATING_TOLERANCE = 1e-3
#: fewer battles than this for any model, and its interval says little
MIN_BATTLES = 10
#: wider than this (Elo points), an interval says little
WIDE_INTERVAL = 400.0

#: why a model has no finite rating, by what ``ModelRating.unbounded`` holds
UNBOUNDED_MEANING: dict[str, str] = {
    "won": "won every battle it played against the rated models",
    "lost": "lost every battle it played against the rated models",
    "apart": "played only models with no finite rating",
}


@dataclass(frozen=True)
class ModelRating:
    """One model's row: rating and 95% interval on the Elo scale, its rank from the intervals, its record.

    A model that won (or lost) every battle has no finite maximum-likelihood rating: ``unbounded`` then
    says which (a key of ``UNBOUNDED_MEANING``), its rating and interval are None, and it ranks above (or
    below) every rated model.
    """

    model: str
    rating: float | None
    ci_low: float | None
    ci_high: float | None
    rank: int  # 1 + the number of models whose interval lies wholly above this one's
    battles: int
    wins: int
    ties: int  # ties and "both bad"
    losses: int
    unbounded: str | None = None

    @property
    def bounded(self) -> bool:
        return self.unbounded is None


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
    #: ``predicted[a][b]``: the probability that a beats b that the ratings give (rated models only)
    predicted: dict[str, dict[str, float]]
    battles: int
    rounds: int
    seed: int
    anchor: str | None
    #: with style control: the style coefficients (the ratings are then those with style held equal)
    style: list[StyleEffect] | None
    #: with style control: what the replies' length is counted in ("tokens", "characters" or "mixed")
    length_unit: str | None = None

    @property
    def too_few_battles(self) -> str | None:
        """Why the intervals say little, or None: a model with under ``MIN_BATTLES`` battles, or every
        interval wider than ``WIDE_INTERVAL``."""
        if not self.models:
            return None
        few = [row.model for row in self.models if row.battles < MIN_BATTLES]
        if few:
            return f"{len(few)} of {len(self.models)} models have fewer than {MIN_BATTLES} battles"
        widths = [row.ci_high - row.ci_low for row in self.models if row.ci_low is not None and row.ci_high is not None]
        if self.rounds and widths and min(widths) > WIDE_INTERVAL:
            return f"every interval is wider than {WIDE_INTERVAL:.0f} Elo points"
        return None

    def to_json(self) -> dict[str, Any]:
        """The object ``zhbench leaderboard --json`` prints; scripts read these names."""
        return {
            "models": [asdict(row) | {"bounded": row.bounded} for row in self.models],
            "win_rates": self.win_rates,
            "predicted": self.predicted,
            "battles": self.battles,
            "bootstrap": {"rounds": self.rounds, "seed": self.seed},
            "anchor": self.anchor,
            "too_few_battles": self.too_few_battles,
            "style_control": self.style is not None,
            "style": None if self.style is None else [asdict(effect) for effect in self.style],
            "length_unit": self.length_unit,
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

    A model that won or lost every battle has no finite rating: it is marked, not rated, and its battles
    are left out of the fit, so it moves no other model's rating (at the likelihood's limit they count for
    nothing anyway); this is repeated while leaving them out makes another such model.
    """
    import numpy as np

    from zhbench.workbench.session.arena.bradley_terry import win_probability

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
    unbounded = _unbounded(a, b, score, models)
    if anchor is not None and index[anchor] in unbounded:
        raise ValueError(
            f"{anchor!r} has no finite rating to anchor on (it {UNBOUNDED_MEANING[unbounded[index[anchor]][0]]})"
        )
    rated = [i for i in range(models) if i not in unbounded]
    position = np.full(models, -1, dtype=np.int64)
    position[rated] = np.arange(len(rated))
    kept = [i for i in range(count) if position[a[i]] >= 0 and position[b[i]] >= 0]
    rows = np.asarray(kept, dtype=np.int64)
    anchor_index = None if anchor is None else int(position[index[anchor]])
    fitted = _fit(
        position[a[rows]],
        position[b[rows]],
        score[rows],
        len(rated),
        [outcomes[i] for i in kept] if style_control else None,
        rounds,
        seed,
        anchor_index,
    )
    rating, low, high = fitted.rating, fitted.low, fitted.high
    wins, ties, losses = _records(a, b, score, models)
    on_top = sum(kind == "won" for kind, _ in unbounded.values())
    rank = on_top + 1 + (low[None, :] > high[:, None] + RATING_TOLERANCE).sum(axis=1)

    def row(i: int) -> ModelRating:
        record = (int(wins[i] + ties[i] + losses[i]), int(wins[i]), int(ties[i]), int(losses[i]))
        if i in unbounded:
            kind, peeled = unbounded[i]
            where = _unbounded_rank(kind, peeled, unbounded, models)
            return ModelRating(names[i], None, None, None, where, *record, unbounded=kind)
        j = int(position[i])
        return ModelRating(names[i], float(rating[j]), float(low[j]), float(high[j]), int(rank[j]), *record)

    ranked = sorted(
        (row(i) for i in range(models)),
        key=lambda r: (on_top + 1 if r.bounded else r.rank, -(r.rating or 0.0), r.model),
    )
    order = [index[r.model] for r in ranked]
    win_rate = _win_rates(a, b, score, models)
    predicted = win_probability(rating)
    rated_order = [int(position[i]) for i in order if position[i] >= 0]
    return Leaderboard(
        models=ranked,
        win_rates={
            names[i]: {names[j]: (None if np.isnan(win_rate[i, j]) else float(win_rate[i, j])) for j in order}
            for i in order
        },
        predicted={
            names[rated[i]]: {names[rated[j]]: float(predicted[i, j]) for j in rated_order if j != i}
            for i in rated_order
        },
        battles=count,
        rounds=rounds,
        seed=seed,
        anchor=anchor,
        style=fitted.style,
        length_unit=fitted.length_unit,
    )


@dataclass(frozen=True)
class _Fit:
    rating: FloatArray
    low: FloatArray
    high: FloatArray
    style: list[StyleEffect] | None
    length_unit: str | None


def _fit(
    a: IntArray,
    b: IntArray,
    score: FloatArray,
    models: int,
    styled: Sequence[Outcome] | None,
    rounds: int,
    seed: int,
    anchor: int | None,
) -> _Fit:
    """Ratings on the Elo scale of ``models`` models from their battles, with the bootstrap's 95% bounds;
    with ``styled`` (the same battles' outcomes) style held equal."""
    import numpy as np

    from zhbench.workbench.session.arena import bradley_terry

    if models == 0:
        empty = np.zeros(0)
        return _Fit(empty, empty, empty, None, None)
    features = None if styled is None else _style_features(styled)
    if features is not None:
        matchups = bradley_terry.Matchups(a, b, score, np.ones(a.size), features[0])
    else:
        matchups = bradley_terry.counted_matchups(a, b, score, models)
    estimate = bradley_terry.fit(matchups, models)
    refits = bradley_terry.bootstrap(matchups, models, rounds, seed, estimate) if rounds else estimate[None, :]
    rating = bradley_terry.elo(estimate[:models], anchor)
    low, high = np.percentile(bradley_terry.elo(refits[:, :models], anchor), [2.5, 97.5], axis=0)
    return _Fit(
        rating,
        low,
        high,
        None if features is None else _style_effects(estimate[models:], refits[:, models:]),
        None if features is None else features[1],
    )


def _unbounded(a: IntArray, b: IntArray, score: FloatArray, models: int) -> dict[int, tuple[str, int]]:
    """The models with no finite rating, each with why (``won``, ``lost`` or ``apart``) and the pass that
    found it: a model whose battles among the models still in are all wins, or all losses, goes out, and
    the rest is looked at again (a model that lost only to one that won everything is then alone on top)."""
    import numpy as np

    found: dict[int, tuple[str, int]] = {}
    active = np.ones(models, dtype=bool)
    for peel in range(models):
        among = active[a] & active[b]
        wins, ties, losses = _records(a[among], b[among], score[among], models)
        played = wins + ties + losses
        gone = {
            int(i): ("apart" if played[i] == 0 else "won" if losses[i] + ties[i] == 0 else "lost")
            for i in np.flatnonzero(active & ((played == 0) | (losses + ties == 0) | (wins + ties == 0)))
        }
        if not gone:
            break
        for i, kind in gone.items():
            found[i] = (kind, peel)
            active[i] = False
    return found


def _unbounded_rank(kind: str, peeled: int, unbounded: dict[int, tuple[str, int]], models: int) -> int:
    """Where a model with no finite rating ranks: one that won everything above every rated model (those
    found in an earlier pass above those found later), one that lost everything below them all; one that
    played only such models just below the top ones (nothing places it among the rated)."""
    kinds = list(unbounded.values())
    if kind == "won":
        return 1 + sum(k == "won" and p < peeled for k, p in kinds)
    if kind == "apart":
        return 1 + sum(k == "won" for k, _ in kinds)
    return models - sum(k == "lost" and p <= peeled for k, p in kinds) + 1


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


def _style_features(outcomes: Sequence[Outcome]) -> tuple[FloatArray, str]:
    """The style covariates of every battle, and what length is counted in (``tokens``, ``characters``, or
    ``mixed`` when the battles differ); every battle must carry both sides' style counts."""
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
    units = {style.length_unit for o in outcomes for style in (o.style_a, o.style_b) if style}
    unit = units.pop() if len(units) == 1 else "mixed"
    return style_features(side_a.reshape(-1, len(STYLE_FEATURES)), side_b.reshape(-1, len(STYLE_FEATURES))), unit


def _style_effects(estimate: FloatArray, refits: FloatArray) -> list[StyleEffect]:
    """The style coefficients on the Elo scale, with their bootstrap intervals."""
    import numpy as np

    from zhbench.workbench.session.arena.bradley_terry import ELO_PER_UNIT

    low, high = np.percentile(refits * ELO_PER_UNIT, [2.5, 97.5], axis=0)
    return [
        StyleEffect(feature, float(estimate[i] * ELO_PER_UNIT), float(low[i]), float(high[i]))
        for i, feature in enumerate(STYLE_FEATURES)
    ]
