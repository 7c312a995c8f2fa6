"""Our leaderboard against FastChat's published formulas, run on our own export.

The reference below is this test's own code, written from the formulas FastChat's
``fastchat/serve/monitor/rating_systems.py`` publishes (``compute_bt``: battles counted per (pair,
outcome), P(A wins) = σ(ln 10 · (r_A − r_B)), a tie half a win, L-BFGS-B, ratings × 400 + 1000;
``compute_style_control``: per battle and count ``(a − b) / (a + b + 1)`` from ``conv_metadata``, each
count an integer or a dict of integers summed, standardised, as covariates). It reads only the exported
file, as FastChat would.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scipy.optimize import minimize
from scipy.special import expit

from zhbench.workbench.cli import main
from zhbench.workbench.session.arena.votes import BattleModel, VoteStore, new_battle

#: FastChat's STYLE_CONTROL_ELEMENTS_V1
STYLE_KEYS = [
    "sum_assistant_a_tokens",
    "header_count_a",
    "list_count_a",
    "bold_count_a",
    "sum_assistant_b_tokens",
    "header_count_b",
    "list_count_b",
    "bold_count_b",
]
OUTCOME = {"model_a": 1.0, "model_b": 0.0}  # anything else is a tie (0.5)


def reference_bt(records: list[dict[str, Any]]) -> dict[str, float]:
    """Bradley–Terry ratings the way ``compute_bt`` gets them (no baseline model in our data)."""
    names = sorted({r["model_a"] for r in records} | {r["model_b"] for r in records})
    index = {name: i for i, name in enumerate(names)}
    rows: dict[tuple[int, int, float], float] = {}
    for r in records:
        key = (index[r["model_a"]], index[r["model_b"]], OUTCOME.get(r["winner"], 0.5))
        rows[key] = rows.get(key, 0.0) + 1.0
    pairs = np.array([[a, b] for a, b, _ in rows], dtype=np.int64)
    outcome = np.array([s for _, _, s in rows])
    weight = np.array(list(rows.values()))
    alpha = math.log(10.0)

    def loss(ratings: np.ndarray) -> tuple[float, np.ndarray]:
        p = expit(alpha * (ratings[pairs[:, 0]] - ratings[pairs[:, 1]]))
        value = -((np.log(p) * outcome + np.log(1.0 - p) * (1.0 - outcome)) * weight).sum()
        step = -alpha * (outcome - p) * weight
        grad = np.zeros_like(ratings)
        np.add.at(grad, pairs[:, 0], step)
        np.add.at(grad, pairs[:, 1], -step)
        return value, grad

    fitted = minimize(loss, np.zeros(len(names)), jac=True, method="L-BFGS-B", options={"gtol": 1e-10, "maxiter": 1000})
    return dict(zip(names, fitted.x * 400 + 1000, strict=True))


def reference_style_control(records: list[dict[str, Any]], reg: float) -> dict[str, float]:
    """Ratings with style held equal, the way ``compute_style_control`` gets them, with its ridge ``reg``."""
    names = sorted({r["model_a"] for r in records} | {r["model_b"] for r in records})
    index = {name: i for i, name in enumerate(names)}
    pairs = np.array([[index[r["model_a"]], index[r["model_b"]]] for r in records])
    outcome = np.array([OUTCOME.get(r["winner"], 0.5) for r in records])

    def count(value: int | dict[str, int]) -> int:
        return value if isinstance(value, int) else sum(value.values())

    vector = np.array([[count(r["conv_metadata"][key]) for r in records] for key in STYLE_KEYS], dtype=np.float64)
    half = len(STYLE_KEYS) // 2
    diff = (vector[:half] - vector[half:]) / (vector[:half] + vector[half:] + 1.0)
    features = ((diff - diff.mean(axis=1, keepdims=True)) / diff.std(axis=1, keepdims=True)).T
    alpha, models = math.log(10.0), len(names)

    def loss(params: np.ndarray) -> tuple[float, np.ndarray]:
        ratings, theta = params[:models], params[models:]
        p = expit(alpha * (ratings[pairs[:, 0]] - ratings[pairs[:, 1]]) + features @ theta)
        value = -(np.log(p) * outcome + np.log(1.0 - p) * (1.0 - outcome)).sum() + reg / 2 * params @ params
        error = outcome - p
        grad = reg * params
        np.add.at(grad[:models], pairs[:, 0], -alpha * error)
        np.add.at(grad[:models], pairs[:, 1], alpha * error)
        grad[models:] -= features.T @ error
        return value, grad

    start = np.zeros(models + half)
    fitted = minimize(loss, start, jac=True, method="L-BFGS-B", options={"gtol": 1e-10, "maxiter": 5000})
    return dict(zip(names, fitted.x[:models] * 400 + 1000, strict=True))


REPLIES = [
    "好的。",
    "## 标题\n1. 一\n2. 二\n- **重点**",
    "很长的回答" * 20,
    "**粗体**和__下划线__",
    "# 一\n## 二\n- a\n- b\n* c",
]


@pytest.fixture
def stored_votes() -> None:
    """500 blind human votes among five models whose replies differ in length and Markdown."""
    rng = np.random.default_rng(3)
    strength = {"qwen": 1.0, "glm": 0.5, "baichuan": 0.0, "yi": -0.3, "chatyuan": -1.0}
    names = list(strength)
    with VoteStore.open() as store:
        for _ in range(500):
            a, b = rng.choice(len(names), size=2, replace=False)
            p = 1 / (1 + math.exp(strength[names[b]] - strength[names[a]]))
            verdict = "tie" if rng.random() < 0.1 else "a" if rng.random() < p else "b"
            question = {"role": "user", "content": "介绍一下你自己"}
            store.record(
                new_battle(
                    BattleModel(names[a], "chat-template"),
                    BattleModel(names[b], "chat-template"),
                    verdict,
                    [question, {"role": "assistant", "content": REPLIES[rng.integers(len(REPLIES))]}],
                    [question, {"role": "assistant", "content": REPLIES[rng.integers(len(REPLIES))]}],
                    maker_names=(),
                )
            )


def board(capsys: pytest.CaptureFixture[str], *argv: str) -> dict[str, float]:
    assert main(["leaderboard", "--format", "json", "--bootstrap", "0", *argv]) == 0
    return {row["model"]: row["rating"] for row in json.loads(capsys.readouterr().out)["models"]}


def test_our_ratings_match_fastchats_formula_on_our_export(capsys, stored_votes, tmp_path: Path) -> None:
    path = tmp_path / "battles.json"
    assert main(["votes", "export", "-o", str(path)]) == 0
    records = json.loads(path.read_text(encoding="utf-8"))
    assert all(set(STYLE_KEYS) <= set(record["conv_metadata"]) for record in records)

    ours, reference = board(capsys), reference_bt(records)
    assert ours.keys() == reference.keys()
    assert max(abs(ours[name] - reference[name]) for name in ours) < 0.01
    assert board(capsys, "--battles", str(path)) == pytest.approx(ours, abs=1e-9)

    # style control: FastChat's features from the exported conv_metadata, its ridge made negligible
    styled, styled_reference = board(capsys, "--style-control"), reference_style_control(records, reg=1e-6)
    assert max(abs(styled[name] - styled_reference[name]) for name in styled) < 0.01
    assert board(capsys, "--style-control", "--battles", str(path)) == pytest.approx(styled, abs=1e-6)
