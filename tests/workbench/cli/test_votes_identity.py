"""Stored votes under one id per model: older stores migrate, two models of one name rank apart, and
``zhbench votes rename`` renames or merges."""

from __future__ import annotations

import json
import sqlite3

import pytest

from zhbench.workbench.cli import main
from zhbench.workbench.session.arena.votes import MIGRATIONS, BattleModel, VoteStore, migrate, new_battle, votes_path

TURNS = [{"role": "user", "content": "你好"}, {"role": "assistant", "content": "你好！"}]


def side(model: str, path: str | None = None, fingerprint: str | None = None) -> BattleModel:
    return BattleModel(model, "chatyuan", path=path, fingerprint=fingerprint)


def board(capsys: pytest.CaptureFixture[str]) -> tuple[dict[str, int], str]:
    """Each ranked model's number of battles, and what was said beside the table."""
    assert main(["leaderboard", "--bootstrap", "0", "--format", "json"]) == 0
    out, err = capsys.readouterr()
    return {row["model"]: row["battles"] for row in json.loads(out)["models"]}, err


def test_an_older_store_names_a_model_voted_by_path_and_by_name_once(capsys: pytest.CaptureFixture[str]) -> None:
    path = votes_path()
    path.parent.mkdir(parents=True)
    connection = sqlite3.connect(path, isolation_level=None)
    migrate(connection, MIGRATIONS[:1])  # the store as the zhbench before one id per model left it
    store = VoteStore(connection, path)
    chatyuan = "/models/chatyuan"
    store.record(new_battle(side("chatyuan", chatyuan), side("glm", "/models/glm"), "a", TURNS, TURNS))  # arena
    store.record(new_battle(side(chatyuan, chatyuan), side("/models/glm", "/models/glm"), "b", TURNS, TURNS))  # batch
    store.close()
    rows, _ = board(capsys)
    assert rows == {"chatyuan": 2, "glm": 2}
    with VoteStore.open() as upgraded:
        assert {battle.model_a.id for battle in upgraded.battles()} == {"chatyuan"}


def test_two_models_that_share_a_name_rank_apart_and_rename_names_one(capsys: pytest.CaptureFixture[str]) -> None:
    first, second = "sha256:" + "1a" * 32, "sha256:" + "2b" * 32
    with VoteStore.open() as store:
        for fingerprint, verdict in ((first, "a"), (first, "a"), (second, "b")):
            store.record(new_battle(side("chatyuan", "/m/chatyuan", fingerprint), side("glm"), verdict, TURNS, TURNS))
    rows, said = board(capsys)
    assert rows == {"chatyuan#1a1a1a1a": 2, "chatyuan#2b2b2b2b": 1, "glm": 3}
    assert "2 different models share the id chatyuan" in said and "zhbench votes rename" in said
    assert main(["votes", "export"]) == 0  # FastChat's file keeps them apart too
    exported, said = capsys.readouterr()
    assert {record["model_a"] for record in json.loads(exported)} == {"chatyuan#1a1a1a1a", "chatyuan#2b2b2b2b"}
    assert "share the id chatyuan" in said

    assert main(["votes", "rename", "chatyuan#2b2b2b2b", "chatyuan-v2"]) == 0
    assert "in 1 battle" in capsys.readouterr().out
    rows, said = board(capsys)
    assert rows == {"chatyuan": 2, "chatyuan-v2": 1, "glm": 3} and not said

    assert main(["votes", "rename", "chatyuan-v2", "glm"]) == 0  # merged: one model under two names
    capsys.readouterr()
    with VoteStore.open() as store:
        merged = [battle for battle in store.battles() if battle.model_a.id == "glm"]
    assert len(merged) == 1 and merged[0].model_a.fingerprint == second  # the content stays known
    rows, said = board(capsys)
    assert rows == {"chatyuan": 2, "glm": 2} and "1 battle of a model against itself" in said

    assert main(["votes", "rename", "absent", "x"]) == 1
    assert "no stored vote names 'absent'" in capsys.readouterr().err
