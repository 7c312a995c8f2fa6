"""Input ids of every family, token for token, against references written from the upstream code."""

from __future__ import annotations

import pytest

from zhbench.engines.context import FittedIds
from zhbench.engines.families.clue_t5.chatyuan import chatyuan_postprocess, chatyuan_preprocess, chatyuan_prompt
from zhbench.engines.families.clue_t5.promptclue import (
    TASK_TEMPLATES,
    PromptClueParams,
    promptclue_postprocess,
    promptclue_preprocess,
    promptclue_prompt,
)
from zhbench.engines.families.dialogpt_zh import dialogpt_input_ids
from zhbench.engines.families.gpt2_dialogbot import dialogbot_input_ids
from zhbench.engines.types import GenerationParams

HISTORIES = {
    "one turn": [{"role": "user", "content": "你好，今天天气怎么样？"}],
    "three turns": [
        {"role": "user", "content": "你好！"},
        {"role": "assistant", "content": "您好，有什么可以帮您？"},
        {"role": "user", "content": "小米的创始人是谁？"},
        {"role": "assistant", "content": "雷军。"},
        {"role": "user", "content": "他是哪里人：“湖北”吗？"},
    ],
    "newlines and tabs": [
        {"role": "user", "content": "第一行\n第二行\t制表"},
        {"role": "assistant", "content": "好的\n收到"},
        {"role": "user", "content": "再来\n一次"},
    ],
    "empty messages": [
        {"role": "user", "content": ""},
        {"role": "assistant", "content": ""},
        {"role": "user", "content": ""},
    ],
}


# --- gpt2-dialogbot: dialogbot/gpt/interact.py -------------------------------------------------


def upstream_dialogbot_ids(tokenizer, history):
    """interact.py: [CLS], then each of history[-max_history_len:] encoded without specials plus [SEP]."""
    ids = [tokenizer.cls_token_id]
    for message in history[-3:]:
        ids += [*tokenizer.encode(message["content"], add_special_tokens=False), tokenizer.sep_token_id]
    return ids


@pytest.mark.parametrize("name", HISTORIES)
def test_dialogbot_input_ids_match_upstream(engine_for, name):
    engine = engine_for("gpt2-dialogbot")
    prompt = engine.prompt_for(HISTORIES[name])
    assert prompt.input_ids == upstream_dialogbot_ids(engine.tokenizer, HISTORIES[name])
    assert prompt.text.startswith("[CLS]") and prompt.text.endswith("[SEP]")


def test_dialogbot_keeps_only_the_last_three_utterances():
    fitted = dialogbot_input_ids([[10], [11], [12], [13], [14]], cls_id=1, sep_id=2, max_prompt_tokens=100)
    assert fitted == FittedIds([1, 12, 2, 13, 2, 14, 2], dropped_messages=2)


def test_dialogbot_never_passes_n_positions(engine_for):
    """Upstream crashes once [CLS] + context + reply passes 300 positions; we drop the oldest context."""
    engine = engine_for("gpt2-dialogbot")
    long = "很长的句子" * 40  # 200 tokens
    history = [
        {"role": "user", "content": long},
        {"role": "assistant", "content": long},
        {"role": "user", "content": "最后的问题？"},
    ]
    params = engine.default_params()  # 128 new tokens
    prompt = engine.prompt_for(history, params)
    assert len(prompt.input_ids) + params.max_new_tokens <= 300
    newest = engine.tokenizer.encode("最后的问题？", add_special_tokens=False)
    assert prompt.input_ids[-len(newest) - 1 : -1] == newest
    reply = engine.reply(history, params.with_overrides({"seed": 3}))
    assert reply.stats.prompt_tokens + reply.stats.new_tokens <= 300


def test_dialogbot_cuts_an_overlong_single_message_to_its_end():
    fitted = dialogbot_input_ids([list(range(100, 400))], cls_id=1, sep_id=2, max_prompt_tokens=10)
    assert fitted == FittedIds([1, *range(392, 400), 2], dropped_messages=0, truncated=True)


# --- dialogpt-zh: the model card's loop -------------------------------------------------------


@pytest.mark.parametrize("name", HISTORIES)
def test_dialogpt_input_ids_match_the_card(engine_for, name):
    """The card: each user input is ``encode(text + eos_token)``; replies keep their ids and <eos>."""
    engine = engine_for("dialogpt-zh")
    tokenizer = engine.tokenizer
    expected = []
    for message in HISTORIES[name]:
        expected += tokenizer.encode(message["content"] + tokenizer.eos_token)
    assert engine.prompt_for(HISTORIES[name]).input_ids == expected


def test_dialogpt_drops_oldest_exchanges_to_fit():
    utterances = [[5] * 30, [6] * 30, [7] * 30, [8] * 30, [9] * 10]
    fitted = dialogpt_input_ids(utterances, eos_id=0, max_prompt_tokens=80)
    # u1+r1 go together; the context starts at a user turn (u2)
    assert fitted == FittedIds([7] * 30 + [0] + [8] * 30 + [0] + [9] * 10 + [0], dropped_messages=2)


def test_dialogpt_long_history_stays_inside_its_window(engine_for):
    engine = engine_for("dialogpt-zh")
    history = []
    for turn in range(60):
        history += [
            {"role": "user", "content": f"第{turn}个问题，" * 5},
            {"role": "assistant", "content": "回答。" * 5},
        ]
    history.append({"role": "user", "content": "最后"})
    params = engine.default_params().with_overrides({"max_new_tokens": 100})
    prompt = engine.prompt_for(history, params)
    assert len(prompt.input_ids) <= 1000 - 100
    assert prompt.input_ids[-len(engine.tokenizer.encode("最后<|endoftext|>")) :] == engine.tokenizer.encode(
        "最后<|endoftext|>"
    )


# --- chatyuan: README-v1.MD --------------------------------------------------------------------


def test_chatyuan_prompt_text_follows_the_card():
    assert chatyuan_prompt(HISTORIES["one turn"]) == "用户：你好，今天天气怎么样？\n小元："
    assert chatyuan_prompt(HISTORIES["three turns"]) == (
        "用户：你好！\n小元：您好，有什么可以帮您？\n用户：小米的创始人是谁？\n小元：雷军。\n用户：他是哪里人：“湖北”吗？\n小元："
    )


def test_chatyuan_escaping_round_trips():
    text = "第一行\n第二行\t制表"
    assert chatyuan_preprocess(text) == "第一行\\n第二行\\t制表"
    assert chatyuan_postprocess(chatyuan_preprocess(text)) == text


@pytest.mark.parametrize("name", HISTORIES)
def test_chatyuan_input_ids_match_the_card(engine_for, name):
    engine = engine_for("chatyuan")
    text = chatyuan_preprocess(chatyuan_prompt(HISTORIES[name]))
    expected = engine.tokenizer(text=[text], truncation=True, padding=True, max_length=768).input_ids[0]
    prompt = engine.prompt_for(HISTORIES[name])
    assert prompt.text == text
    assert prompt.input_ids == expected
    assert "\n" not in prompt.text and "\t" not in prompt.text


def test_chatyuan_long_history_keeps_the_newest_question_and_the_cue(engine_for):
    """Upstream cuts the right end past 768 tokens and loses the question; we drop the oldest turns."""
    engine = engine_for("chatyuan")
    history = []
    for turn in range(80):
        history += [
            {"role": "user", "content": f"问题{turn}：今天天气怎么样？"},
            {"role": "assistant", "content": "很好。" * 4},
        ]
    history.append({"role": "user", "content": "最后一个问题是什么？"})
    prompt = engine.prompt_for(history)
    assert len(prompt.input_ids) <= 768
    assert prompt.text.endswith("用户：最后一个问题是什么？\\n小元：")
    assert prompt.text.startswith("用户：")  # whole exchanges dropped, no dangling reply
    expected_tail = engine.tokenizer(chatyuan_preprocess("\n用户：最后一个问题是什么？\n小元：")).input_ids
    assert prompt.input_ids[-5:] == expected_tail[-5:]


def test_chatyuan_overlong_single_question_keeps_its_end(engine_for):
    engine = engine_for("chatyuan")
    question = "甲" * 2000 + "请总结。"
    prompt = engine.prompt_for([{"role": "user", "content": question}])
    assert len(prompt.input_ids) <= 768
    assert prompt.text.endswith("请总结。\\n小元：") and prompt.text.startswith("用户：甲")


# --- promptclue: the v1-5 card -----------------------------------------------------------------


def test_promptclue_templates_and_escaping():
    assert promptclue_prompt("小米的创始人是谁？") == "问答：\n问题：小米的创始人是谁？\n答案："
    assert promptclue_preprocess("问答：\n问题：x\n答案：") == "问答：_问题：x_答案："
    assert promptclue_postprocess("a_b") == "a\nb"
    assert promptclue_prompt("标题", "article") == "根据标题生成文章：\n标题：标题\n答案："
    assert set(TASK_TEMPLATES) >= {"qa", "summarize", "translate_en", "classify", "sentiment", "keywords"}


@pytest.mark.parametrize("name", HISTORIES)
def test_promptclue_uses_only_the_newest_message(engine_for, name):
    engine = engine_for("promptclue")
    newest = HISTORIES[name][-1]["content"]
    text = promptclue_preprocess(promptclue_prompt(newest))
    expected = engine.tokenizer(text=[text], truncation=True, padding=True, max_length=768).input_ids[0]
    prompt = engine.prompt_for(HISTORIES[name])
    assert (prompt.text, prompt.input_ids) == (text, expected)


def test_promptclue_task_is_selectable_and_checked(engine_for):
    engine = engine_for("promptclue")
    history = [{"role": "user", "content": "今天天气很好"}]
    prompt = engine.prompt_for(history, PromptClueParams(task="sentiment"))
    assert prompt.text == "情感分析：_今天天气很好_答案："
    with pytest.raises(ValueError, match="unknown task 'poetry'"):
        engine.reply(history, PromptClueParams(task="poetry"))


def test_params_coerce_cli_strings_and_reject_unknown_names():
    params = GenerationParams().with_overrides({"top_k": "8", "greedy": "true", "temperature": "0.5", "seed": "none"})
    assert (params.top_k, params.greedy, params.temperature, params.seed) == (8, True, 0.5, None)
    with pytest.raises(ValueError, match="unknown parameter 'topk'"):
        GenerationParams().with_overrides({"topk": 3})
    with pytest.raises(ValueError, match="top_k needs a whole number, got 'many'"):
        GenerationParams().with_overrides({"top_k": "many"})


# --- what did not fit is said (issue 18, item 7) ----------------------------------------------

LONG = "很长的句子，说了很多话。" * 500


@pytest.mark.parametrize(
    ("family", "window"),
    [("gpt2-dialogbot", 300), ("dialogpt-zh", 1000), ("chatyuan", 768), ("chat-template", 4096), ("eva2", 128)],
)
def test_a_reply_says_what_of_the_conversation_did_not_fit(engine_for, family, window):
    from zhbench.engines.types import ContextFit, stats_summary

    engine = engine_for(family)
    params = engine.default_params().with_overrides({"max_new_tokens": 2, "seed": 5})
    fits = [{"role": role, "content": text} for role, text in (("user", "早"), ("assistant", "早"), ("user", "好"))]
    assert engine.prompt_for(fits, params).fit == ContextFit(window)
    old_ones_too_long = [{"role": "user", "content": LONG}, {"role": "assistant", "content": LONG}, fits[-1]]
    assert engine.prompt_for(old_ones_too_long, params).fit == ContextFit(window, dropped_messages=2)
    newest_too_long = [*fits[:2], {"role": "user", "content": LONG}]
    prompt = engine.prompt_for(newest_too_long, params)
    assert prompt.fit == ContextFit(window, dropped_messages=2, truncated=True)
    reply = engine.reply(newest_too_long, params)
    stats = reply.stats.to_dict()
    assert (stats["context_tokens"], stats["context_window"]) == (len(prompt.input_ids), window)
    line = stats_summary(stats, reply.params.to_dict())
    assert f" · ctx {len(prompt.input_ids)}/{window} · context: dropped 2 earlier messages, message truncated" in line
    assert "context:" not in stats_summary(engine.reply(fits, params).stats.to_dict())  # nothing cut: nothing said
