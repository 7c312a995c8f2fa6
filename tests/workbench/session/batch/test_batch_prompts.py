"""Reading prompt sets: JSONL, CSV, text, the built-in zh-basic, and bad lines named by number."""

from __future__ import annotations

from collections import Counter

import pytest

from zhbench.workbench.session.batch.prompts import PromptSetError, builtin_set, read_prompt_set

CATEGORIES = {"闲聊", "知识问答", "写作", "推理", "数学", "代码", "翻译", "安全/拒答"}


def test_zh_basic_has_80_prompts_ten_in_each_of_8_categories():
    prompt_set = builtin_set("zh-basic")
    assert len(prompt_set.items) == 80 and not prompt_set.bad_lines
    assert Counter(item.category for item in prompt_set.items) == dict.fromkeys(CATEGORIES, 10)
    assert len({item.id for item in prompt_set.items}) == 80
    assert all(item.messages[-1]["role"] == "user" and item.prompt.strip() for item in prompt_set.items)
    assert any(len(item.messages) > 1 for item in prompt_set.items)  # multi-turn items are in it
    assert prompt_set.name == "zh-basic"


def test_an_unknown_builtin_set_names_the_known_ones():
    with pytest.raises(PromptSetError, match="zh-basic"):
        builtin_set("nope")


def test_jsonl_items_and_every_bad_line_by_number(tmp_path):
    path = tmp_path / "set.jsonl"
    path.write_text(
        '{"id": "a", "prompt": "你好", "category": "闲聊", "reference": "你好！"}\n'
        "{not json\n"
        "\n"
        '{"id": "b", "messages": [{"role": "user", "content": "一"}, {"role": "assistant", "content": "二"}, '
        '{"role": "user", "content": "三"}]}\n'
        '{"id": "c"}\n'
        '{"id": "a", "prompt": "again"}\n'
        '{"id": "d", "messages": [{"role": "user", "content": "x"}, {"role": "assistant", "content": "y"}]}\n'
        '["a list"]\n'
        '{"prompt": "no id"}\n',
        encoding="utf-8",
    )
    prompt_set = read_prompt_set(path)
    assert [item.id for item in prompt_set.items] == ["a", "b", "line-9"]
    assert prompt_set.items[0].reference == "你好！" and prompt_set.items[0].category == "闲聊"
    assert prompt_set.items[1].prompt == "三" and len(prompt_set.items[1].messages) == 3
    bad = {line.line: line.reason for line in prompt_set.bad_lines}
    assert set(bad) == {2, 5, 6, 7, 8}
    assert "not valid JSON" in bad[2] and "prompt" in bad[5] and "already used on line 1" in bad[6]
    assert "last message" in bad[7] and "object" in bad[8]
    assert str(prompt_set.bad_lines[0]).startswith("line 2: ")


def test_csv_with_a_prompt_column(tmp_path):
    path = tmp_path / "set.csv"
    rows = 'id,prompt,category\nx1,"你好，\n世界",闲聊\nx2,,写作\nx3,再见,闲聊,extra\n'
    path.write_text("\ufeff" + rows, encoding="utf-8")  # with the BOM a spreadsheet writes
    prompt_set = read_prompt_set(path)
    assert [(item.id, item.prompt, item.category) for item in prompt_set.items] == [("x1", "你好，\n世界", "闲聊")]
    assert [line.line for line in prompt_set.bad_lines] == [4, 5]
    (tmp_path / "no.csv").write_text("question\n你好\n", encoding="utf-8")
    assert "prompt" in read_prompt_set(tmp_path / "no.csv").bad_lines[0].reason


def test_a_text_file_is_one_prompt_a_line(tmp_path):
    path = tmp_path / "set.txt"
    path.write_text("你好\n\n  写一首诗  \n", encoding="utf-8")
    prompt_set = read_prompt_set(path)
    assert [(item.id, item.prompt) for item in prompt_set.items] == [("line-1", "你好"), ("line-3", "写一首诗")]


def test_a_missing_or_empty_file_is_one_clear_error(tmp_path):
    with pytest.raises(PromptSetError, match="no such prompt file"):
        read_prompt_set(tmp_path / "missing.jsonl")
    (tmp_path / "empty.txt").write_text("\n\n", encoding="utf-8")
    with pytest.raises(PromptSetError, match="no prompts"):
        read_prompt_set(tmp_path / "empty.txt")
