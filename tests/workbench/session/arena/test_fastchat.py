"""FastChat's clean-battle files: ours go out and come back the same; theirs are read, odd records skipped
and counted."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from zhbench.workbench.session.arena.fastchat import parse_fastchat_battles, read_fastchat_battles, to_fastchat_json
from zhbench.workbench.session.arena.votes import ArenaDataError, Outcome


def test_exported_battles_come_back_as_the_same_outcomes(tmp_path: Path, make_battle) -> None:
    battles = [
        make_battle("qwen", "glm", "a", reply_a="## 答案\n1. 一\n2. **二**"),
        make_battle("glm", "qwen", "b", anonymous=False),
        make_battle("qwen", "deepseek", "tie", reply_b="我是DeepSeek。"),
        make_battle("deepseek", "glm", "bothbad"),
    ]
    path = tmp_path / "battles.json"
    path.write_text(to_fastchat_json(battles), encoding="utf-8")
    records = json.loads(path.read_text(encoding="utf-8"))
    assert [r["winner"] for r in records] == ["model_a", "model_b", "tie", "tie (bothbad)"]
    assert records[0]["conversation_a"][1]["content"].startswith("## 答案") and records[0]["turn"] == 1
    assert [r["anony"] for r in records] == [True, False, True, True]
    read = read_fastchat_battles(path)
    assert read.skipped == {}
    assert read.outcomes == [battle.outcome() for battle in battles]
    assert read.outcomes[2].leaked and read.outcomes[0].style_a is not None and read.outcomes[0].style_a.bold == 1


def test_fastchat_records_are_read_and_odd_ones_counted() -> None:
    read = parse_fastchat_battles(
        [
            {"model_a": "vicuna-13b", "model_b": "koala-13b", "winner": "model_a", "judge": "x", "language": "English"},
            {"model_a": "koala-13b", "model_b": "alpaca-13b", "winner": "tie (bothbad)", "anony": False},
            {"model_a": "koala-13b", "model_b": "alpaca-13b", "winner": "model_c"},
            {"model_a": "koala-13b", "model_b": "koala-13b", "winner": "tie"},
            {"model_a": "koala-13b", "winner": "tie"},
            ["not", "a", "battle"],
        ]
    )
    assert read.outcomes == [
        Outcome("vicuna-13b", "koala-13b", "a"),
        Outcome("koala-13b", "alpaca-13b", "bothbad", anonymous=False),
    ]
    assert read.skipped == {
        "winner 'model_c'": 1,
        "the same model on both sides": 1,
        "no model_a or model_b": 1,
        "not an object": 1,
    }


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("[{", "not valid JSON"),
        ('{"model_a": "x"}', "expected a JSON list of battles"),
        (b"\xff\xfe\x00", "unreadable battles file"),
    ],
)
def test_a_file_that_is_not_a_battles_file_is_one_clear_error(tmp_path: Path, content: str | bytes, message: str):
    path = tmp_path / "battles.json"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(ArenaDataError, match=message):
        read_fastchat_battles(path)
    with pytest.raises(ArenaDataError, match="no such battles file"):
        read_fastchat_battles(tmp_path / "missing.json")
