"""Identity leaks: a reply that names its maker is caught, an ordinary one is not, and the config adds names."""

from __future__ import annotations

from pathlib import Path

import pytest

from zhbench.workbench.session.arena.leaks import maker_names, names_in_conversation, names_in_reply
from zhbench.workbench.session.config import load_config


@pytest.mark.parametrize(
    ("reply", "names"),
    [
        ("我是通义千问，由阿里云开发的大语言模型。", ["通义", "千问", "阿里云"]),
        ("你好！我是ChatGLM，由智谱AI训练。", ["ChatGLM", "智谱"]),
        ("我是由深度求索公司开发的DeepSeek-R1。", ["深度求索", "DeepSeek"]),
        ("I'm ChatGPT, a model trained by OpenAI.", ["ChatGPT", "OpenAI"]),
        ("我是 Kimi，由月之暗面科技有限公司开发。", ["Kimi", "月之暗面"]),
        ("我是ＱＷＥＮ２。", ["Qwen"]),  # full-width letters, any case
        ("作为MiniCPM，我", ["MiniCPM"]),
        ("我是文心一言。", ["文心一言"]),
        ("百川智能的Baichuan2", ["百川", "Baichuan"]),
        ("我是Claude。", ["Claude"]),
    ],
)
def test_a_reply_that_names_its_maker_is_caught(reply: str, names: list[str]) -> None:
    assert names_in_reply(reply) == names


@pytest.mark.parametrize(
    "reply",
    [
        "今天天气很好，我们去公园散步吧。",
        "Kimiko 是一个日本名字。",  # "Kimi" only as a word of its own
        "通知：明天放假。",  # 通 alone is not 通义
        "",
    ],
)
def test_an_ordinary_reply_is_not_a_leak(reply: str) -> None:
    assert names_in_reply(reply) == []


def test_only_the_assistant_replies_of_a_conversation_count() -> None:
    turns = [
        {"role": "user", "content": "你是ChatGPT吗？"},
        {"role": "assistant", "content": "我只是一个助手。"},
        {"role": "user", "content": "那你是Qwen吗？"},
        {"role": "assistant", "content": "是的，我是Qwen。"},
    ]
    assert names_in_conversation(turns) == ["Qwen"]
    assert names_in_conversation(turns[:2]) == []


def test_the_config_adds_names(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text('maker_names = ["讯飞", " ", "Qwen"]\n', encoding="utf-8")
    names = maker_names(load_config(path).maker_names)
    assert names.count("Qwen") == 1 and names[-1] == "讯飞" and " " not in names
    assert names_in_reply("我是讯飞的模型。") == []
    assert names_in_reply("我是讯飞的模型。", names) == ["讯飞"]


def test_a_wrong_maker_names_value_is_named_and_ignored(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text('maker_names = "讯飞"\n', encoding="utf-8")
    config = load_config(path)
    assert config.maker_names == []
    assert [p.split(": ", 1)[1] for p in config.problems] == ["maker_names should be a list of names; ignored"]
