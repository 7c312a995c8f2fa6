"""Battles drawn from known strengths: what the leaderboard's statistics are checked and timed on."""

from __future__ import annotations

from collections.abc import Sequence

from zhbench.workbench.session.arena.votes import Outcome, Verdict


def simulated_outcomes(ratings: Sequence[float], battles: int, seed: int, tie_rate: float = 0.0) -> list[Outcome]:
    """``battles`` battles among models ``m00``, ``m01``… whose true Elo ratings are ``ratings``: each a
    uniformly drawn pair, sides at random, won as Bradley–Terry predicts.

    With ``tie_rate`` > 0 that share of battles is a tie whatever the pair, which Bradley–Terry does not
    model: the fitted ratings then come out closer together than ``ratings``.
    """
    import numpy as np

    rng = np.random.default_rng(seed)
    strength = np.asarray(ratings, dtype=np.float64)
    models = len(strength)
    names = [f"m{index:02d}" for index in range(models)]
    a = rng.integers(0, models, battles)
    b = (a + rng.integers(1, models, battles)) % models  # any model but a, uniformly
    a_wins = rng.random(battles) < 1.0 / (1.0 + 10.0 ** ((strength[b] - strength[a]) / 400.0))
    tie = rng.random(battles) < tie_rate
    verdicts: list[Verdict] = ["a", "b", "tie"]
    kind = np.where(tie, 2, np.where(a_wins, 0, 1))
    return [
        Outcome(names[i], names[j], verdicts[k]) for i, j, k in zip(a.tolist(), b.tolist(), kind.tolist(), strict=True)
    ]
