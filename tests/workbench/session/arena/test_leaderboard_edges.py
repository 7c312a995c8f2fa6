"""The leaderboard's edges (issue 25 items 6-10): judge votes through a FastChat file, FastChat's style
features, a conv_metadata-only file, models with no finite rating, equal ratings, too few battles."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from zhbench.workbench.session.arena.board_text import BOARD_FORMATS, HOW_TO_VOTE, leaderboard_text
from zhbench.workbench.session.arena.bradley_terry import style_features
from zhbench.workbench.session.arena.fastchat import parse_fastchat_battles, read_fastchat_battles, to_fastchat_json
from zhbench.workbench.session.arena.leaderboard import compute_leaderboard, select_outcomes
from zhbench.workbench.session.arena.simulate import simulated_outcomes
from zhbench.workbench.session.arena.votes import Outcome


def test_judge_votes_stay_judge_votes_through_an_export(tmp_path: Path, make_battle) -> None:
    battles = [make_battle("qwen", "glm", "a", source="judge") for _ in range(80)]
    battles += [make_battle("glm", "qwen", "a"), make_battle("qwen", "glm", "tie")]
    path = tmp_path / "battles.json"
    path.write_text(to_fastchat_json(battles), encoding="utf-8")
    selection = select_outcomes(read_fastchat_battles(path).outcomes)
    assert selection.judged == 80 and len(selection.outcomes) == 2
    assert len(select_outcomes(read_fastchat_battles(path).outcomes, include_judge=True).outcomes) == 82


def test_style_features_add_one_to_the_sum_as_fastchat_does() -> None:
    a = np.array([[1.0, 0, 0, 0], [10.0, 2, 0, 0], [0.0, 0, 0, 0], [3.0, 0, 1, 0]])
    b = np.array([[0.0, 0, 0, 0], [0.0, 0, 0, 0], [0.0, 1, 0, 0], [5.0, 0, 0, 0]])
    ratio = (a - b) / (a + b + 1)
    expected = (ratio - ratio.mean(axis=0)) / np.where(ratio.std(axis=0) > 0, ratio.std(axis=0), 1)
    assert style_features(a, b) == pytest.approx(expected)
    assert style_features(a, b)[:, 3] == pytest.approx(0)  # never differed: no covariate


def test_a_file_with_only_conv_metadata_is_ranked_with_style_control() -> None:
    rng = np.random.default_rng(1)
    records = []
    for _ in range(300):
        model_a, model_b = rng.choice(["x", "y", "z"], size=2, replace=False)
        tokens_a, tokens_b = (int(n) for n in rng.integers(10, 500, size=2))
        metadata = {
            "sum_assistant_a_tokens": tokens_a,
            "sum_assistant_b_tokens": tokens_b,
            "header_count_a": {"h1": int(rng.integers(0, 2)), "h2": 0},
            "header_count_b": {"h1": 0, "h2": int(rng.integers(0, 2))},
            "list_count_a": {"ordered": int(rng.integers(0, 3)), "unordered": 0},
            "list_count_b": {"ordered": 0, "unordered": int(rng.integers(0, 3))},
            "bold_count_a": {"**": 0, "__": 0},
            "bold_count_b": {"**": int(rng.integers(0, 2)), "__": 0},
        }
        winner = "model_a" if rng.random() < tokens_a / (tokens_a + tokens_b) else "model_b"
        records.append({"model_a": model_a, "model_b": model_b, "winner": winner, "conv_metadata": metadata})
    outcomes = parse_fastchat_battles(records).outcomes
    board = compute_leaderboard(outcomes, rounds=5, style_control=True)
    assert board.length_unit == "tokens" and board.style is not None
    assert {effect.feature: effect for effect in board.style}["length"].elo > 50  # longer won more often
    text = leaderboard_text(board, select_outcomes(outcomes), {}, "simple.json")
    assert "style held equal (length in tokens)" in text


def test_our_export_says_its_length_is_in_characters(make_battle) -> None:
    records = json.loads(to_fastchat_json([make_battle("x", "y", "a", reply_a="## 标题\n- **一**", reply_b="二")]))
    metadata = records[0]["conv_metadata"]
    assert metadata["sum_assistant_a_tokens"] == len("## 标题\n- **一**") and metadata["length_unit"] == "characters"
    assert (metadata["header_count_a"], metadata["list_count_a"], metadata["bold_count_a"]) == (1, 1, 1)
    outcome = parse_fastchat_battles(records).outcomes[0]
    assert outcome.style_a is not None and outcome.style_a.length_unit == "characters"


def champion_battles() -> list[Outcome]:
    """Four models with mixed records, and a fifth that won all of its battles."""
    outcomes = simulated_outcomes([1100, 1000, 950, 900], 400, seed=4)
    return outcomes + [Outcome("champ", f"m0{i}", "a") for i in range(4)] + [Outcome("m01", "champ", "b")] * 3


def test_a_model_that_won_every_battle_is_marked_and_moves_no_one() -> None:
    without = compute_leaderboard(simulated_outcomes([1100, 1000, 950, 900], 400, seed=4), rounds=20)
    board = compute_leaderboard(champion_battles(), rounds=20)
    top = board.models[0]
    assert (top.model, top.bounded, top.unbounded, top.rating, top.ci_low, top.rank) == (
        "champ",
        False,
        "won",
        None,
        None,
        1,
    )
    rated = {row.model: row for row in board.models[1:]}
    for row in without.models:
        assert rated[row.model].rating == pytest.approx(row.rating, abs=1e-6)
        assert rated[row.model].rank == row.rank + 1
    assert board.to_json()["models"][0]["bounded"] is False
    assert all(row["bounded"] for row in board.to_json()["models"][1:])
    text = leaderboard_text(board, select_outcomes(champion_battles()), {}, "votes")
    assert "† won" in text.splitlines()[2]
    assert "† champ won every battle it played against the rated models: no finite rating" in text


def test_models_peeled_in_turn_when_the_one_above_won_everything() -> None:
    outcomes = [Outcome("a", "b", "a"), Outcome("b", "c", "a"), Outcome("c", "d", "a"), Outcome("d", "c", "a")]
    outcomes += [Outcome("c", "e", "a"), Outcome("e", "d", "a"), Outcome("e", "c", "a")]
    board = compute_leaderboard(outcomes, rounds=0)
    assert [(row.model, row.rank, row.unbounded) for row in board.models[:2]] == [("a", 1, "won"), ("b", 2, "won")]
    assert all(row.bounded and row.rank >= 3 for row in board.models[2:])
    with pytest.raises(ValueError, match="no finite rating to anchor on"):
        compute_leaderboard(outcomes, anchor="a")


def test_a_model_that_lost_everything_ranks_last_with_no_rating() -> None:
    outcomes = [*simulated_outcomes([1100, 1000], 50, seed=2), Outcome("m00", "dud", "a"), Outcome("dud", "m01", "b")]
    board = compute_leaderboard(outcomes, rounds=0)
    assert [(row.model, row.rank, row.unbounded) for row in board.models][-1] == ("dud", 3, "lost")
    assert "dud" not in board.predicted


def test_ratings_equal_within_numerical_noise_share_a_rank() -> None:
    # x and y have exactly the same record against every opponent; so do w and z
    outcomes = [Outcome("x", "z", "a"), Outcome("y", "z", "a"), Outcome("x", "w", "a"), Outcome("y", "w", "a")]
    outcomes += [Outcome("z", "x", "a"), Outcome("z", "y", "a"), Outcome("w", "x", "a"), Outcome("w", "y", "a")] * 2
    board = compute_leaderboard(outcomes, rounds=0)
    ranks = {row.model: row.rank for row in board.models}
    assert ranks == {"w": 1, "z": 1, "x": 3, "y": 3}


def test_too_few_battles_is_said() -> None:
    outcomes = simulated_outcomes([1100, 1000, 900], 9, seed=1)
    board = compute_leaderboard(outcomes, rounds=20)
    assert board.too_few_battles == "3 of 3 models have fewer than 10 battles"
    assert board.to_json()["too_few_battles"] == board.too_few_battles
    text = leaderboard_text(board, select_outcomes(outcomes), {}, "votes")
    assert "too few battles for the intervals to say much: 3 of 3 models have fewer than 10 battles" in text
    assert compute_leaderboard(simulated_outcomes([1100, 1000, 900], 3000, seed=1)).too_few_battles is None


def test_the_empty_leaderboard_says_how_to_vote() -> None:
    board = compute_leaderboard([])
    for form, writer in BOARD_FORMATS.items():
        shown = writer(board, select_outcomes([]), {}, "votes")
        assert form == "csv" or "zhbench arena" in shown, form
    assert HOW_TO_VOTE in leaderboard_text(board, select_outcomes([]), {}, "votes")
