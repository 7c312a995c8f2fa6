"""Bradley–Terry maximum likelihood and its bootstrap: the numbers behind the leaderboard.

P(A beats B) = 1 / (1 + 10^((R_B − R_A) / 400)). A tie is half a win and half a loss, so the
log-likelihood of a battle is ``s·log σ(d) + (1 − s)·log σ(−d)`` with A's score ``s`` in {1, ½, 0} and
``d`` the rating difference on the logistic's natural scale, as FastChat's ``compute_bt``
(``fastchat/serve/monitor/rating_systems.py``). Style control adds ``features · θ`` to ``d``, as its
``fit_contextual_bt``. Fitted with scipy's trust-region Newton method (``trust-exact``) on the mean
negative log-likelihood.

Imported only when a leaderboard is computed: numpy and scipy cost a fraction of a second to load.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
import numpy.typing as npt
from scipy.optimize import minimize
from scipy.special import expit

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

#: Elo points per unit of the logistic's natural scale: 400 points are a factor of 10 in the odds
ELO_PER_UNIT = 400 / math.log(10)
#: The mean rating, and the anchor model's rating when there is one
BASE_RATING = 1000.0
#: A ridge so small it moves no rating by 0.001 Elo with data, yet keeps the fit finite (and the ratings
#: centred) when a model never lost: the likelihood alone would push it to infinity.
RIDGE = 1e-8


@dataclass(frozen=True)
class Matchups:
    """The rows of the likelihood: A's and B's model index, A's score, how many battles the row stands
    for, and (style control) the covariates of each row."""

    a: IntArray
    b: IntArray
    score: FloatArray
    weight: FloatArray
    features: FloatArray | None = None

    @property
    def parameters(self) -> int:
        """Parameters beyond the ratings: one per covariate."""
        return 0 if self.features is None else int(self.features.shape[1])


def counted_matchups(a: IntArray, b: IntArray, score: FloatArray, models: int) -> Matchups:
    """Battles merged into one row per (pair, outcome), weighted by how often it happened.

    The plain likelihood depends on the battles only through these counts, so a fit is over at most
    three rows per pair of models however many battles there are, and resampling battles is
    resampling the counts. A pair is stored lower index first, A's score turned round where needed.
    """
    swap = a > b
    first, second = np.where(swap, b, a), np.where(swap, a, b)
    outcome = np.rint(np.where(swap, 1.0 - score, score) * 2).astype(np.int64)  # 0 loss, 1 tie, 2 win
    cell = (first * models + second) * 3 + outcome
    counts = np.bincount(cell, minlength=models * models * 3)
    seen = np.flatnonzero(counts)
    return Matchups(
        a=(seen // 3 // models).astype(np.int64),
        b=(seen // 3 % models).astype(np.int64),
        score=(seen % 3) / 2.0,
        weight=counts[seen].astype(np.float64),
    )


def fit(matchups: Matchups, models: int, start: FloatArray | None = None) -> FloatArray:
    """The maximum-likelihood parameters: ``models`` ratings (natural scale, mean near 0), then one
    coefficient per covariate. ``start`` warm-starts the optimiser (a bootstrap round from the estimate)."""
    x0 = np.zeros(models + matchups.parameters) if start is None else start
    total = float(matchups.weight.sum())
    # A trust-region Newton method with the exact Hessian (the likelihood is convex, the Hessian small):
    # 3–6 iterations to a gradient under 1e-12, so ratings exact to far under 0.001 Elo. L-BFGS-B took
    # twice the iterations, each costing more than the likelihood itself (tiny BLAS calls that wake
    # OpenBLAS's threads, slow on a busy 2-core machine).
    result = minimize(
        _loss_and_gradient,
        x0,
        args=(matchups, models, total),
        jac=True,
        hess=_hessian,
        method="trust-exact",
        options={"gtol": 1e-12, "maxiter": 1000},
    )
    return np.asarray(result.x, dtype=np.float64)


def bootstrap(matchups: Matchups, models: int, rounds: int, seed: int, start: FloatArray) -> FloatArray:
    """``rounds`` refits on battles resampled with replacement (rows × weights resampled as a multinomial
    over the battles they stand for), each warm-started from ``start``; one row of parameters per round."""
    rng = np.random.default_rng(seed)
    battles = round(float(matchups.weight.sum()))
    share = matchups.weight / matchups.weight.sum()
    fits = np.empty((rounds, start.size))
    for round_index in range(rounds):
        weight = rng.multinomial(battles, share).astype(np.float64)
        fits[round_index] = fit(replace(matchups, weight=weight), models, start)
    return fits


def elo(natural: FloatArray, anchor: int | None = None) -> FloatArray:
    """Natural-scale ratings (one row, or one row per bootstrap round) on the Elo scale: the mean at
    1000, or the ``anchor`` model's rating at 1000 in every row."""
    points = natural * ELO_PER_UNIT
    reference = points.mean(axis=-1, keepdims=True) if anchor is None else points[..., anchor : anchor + 1]
    return np.asarray(points - reference + BASE_RATING, dtype=np.float64)


def win_probability(rating: FloatArray) -> FloatArray:
    """Predicted P(row model beats column model) for Elo-scale ratings."""
    return np.asarray(1.0 / (1.0 + 10.0 ** ((rating[None, :] - rating[:, None]) / 400.0)), dtype=np.float64)


def style_features(style_a: FloatArray, style_b: FloatArray) -> FloatArray:
    """Arena's style covariates: per battle and feature, (A − B) / (A + B + 1) (FastChat's
    ``preprocess_for_style`` with ``add_one``), then standardised over the battles (a feature that never
    differs stays 0). Rows are battles, columns the features."""
    ratio = (style_a - style_b) / (style_a + style_b + 1.0)
    spread = ratio.std(axis=0)
    centred = ratio - ratio.mean(axis=0)
    return np.asarray(np.divide(centred, spread, out=np.zeros_like(centred), where=spread > 0), dtype=np.float64)


def _loss_and_gradient(params: FloatArray, matchups: Matchups, models: int, total: float) -> tuple[float, FloatArray]:
    """The mean negative log-likelihood (plus the tiny ridge) and its gradient."""
    logit = _row_logits(params, matchups, models)
    score = matchups.score
    # logaddexp(0, -x) is −log σ(x) without overflow for large |x|. A sum of products, not ``@``: on long
    # 1-D arrays that is BLAS's ddot, which woke OpenBLAS's threads and took 6 ms instead of 0.1.
    loss = np.sum(matchups.weight * (score * np.logaddexp(0.0, -logit) + (1.0 - score) * np.logaddexp(0.0, logit)))
    loss /= total
    residual = matchups.weight * (expit(logit) - score) / total
    gradient = _to_parameters(residual, matchups, models)
    return float(loss) + 0.5 * RIDGE * float(params @ params), gradient + RIDGE * params


def _hessian(params: FloatArray, matchups: Matchups, models: int, total: float) -> FloatArray:
    """The loss's Hessian at ``params``: Jᵀ diag(w·p·(1 − p)) J with J the rows' design, built by pair
    and by model rather than by row, plus the ridge."""
    probability = expit(_row_logits(params, matchups, models))
    curvature = matchups.weight * probability * (1.0 - probability) / total
    pair = np.bincount(matchups.a * models + matchups.b, curvature, models * models).reshape(models, models)
    pair = pair + pair.T
    hessian = np.diag(np.full(params.size, RIDGE))
    hessian[:models, :models] += np.diag(pair.sum(axis=1)) - pair
    if matchups.features is not None:
        weighted = curvature[:, None] * matchups.features
        by_model = np.stack([_to_parameters(column, replace(matchups, features=None), models) for column in weighted.T])
        hessian[models:, :models] += by_model
        hessian[:models, models:] += by_model.T
        hessian[models:, models:] += matchups.features.T @ weighted
    return hessian


def _row_logits(params: FloatArray, matchups: Matchups, models: int) -> FloatArray:
    """J·params: each row's logit of A winning (the design J is linear, so this also maps directions)."""
    logit = params[matchups.a] - params[matchups.b]
    if matchups.features is not None:
        logit = logit + matchups.features @ params[models:]
    return np.asarray(logit, dtype=np.float64)


def _to_parameters(per_row: FloatArray, matchups: Matchups, models: int) -> FloatArray:
    """Jᵀ·per_row: what a value per row adds up to for each parameter."""
    ratings = np.bincount(matchups.a, per_row, models) - np.bincount(matchups.b, per_row, models)
    if matchups.features is None:
        return np.asarray(ratings, dtype=np.float64)
    return np.concatenate([ratings, matchups.features.T @ per_row])
