"""Reusing the key/value cache of earlier turns: same replies, fewer tokens fed, stable context windows."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
import torch

from zhbench.engines.context import fit_newest_in_steps
from zhbench.engines.families.dialogpt_zh import dialogpt_input_ids
from zhbench.engines.registry import load_engine

MESSAGES = ["你好，今天天气怎么样？", "我们明天去北京吧", "为什么喜欢这个电影？", "谢谢，再见"]


@pytest.fixture
def fresh_dialogpt(standin_dir):
    """A dialogpt-zh engine of its own: these tests depend on what it kept from its last reply."""
    path: Path = standin_dir("dialogpt-zh")
    return lambda: load_engine(str(path), device="cpu")


def chat(engine, turns: int, max_new_tokens: int = 12):
    params = engine.default_params().with_overrides({"max_new_tokens": max_new_tokens})
    history, replies = [], []
    for turn in range(turns):
        history.append({"role": "user", "content": MESSAGES[turn % len(MESSAGES)]})
        reply = engine.reply(history, params)
        replies.append(reply)
        history.append({"role": "assistant", "content": reply.text})
    return history, replies


def test_later_turns_feed_only_their_new_tokens_and_reply_the_same(fresh_dialogpt):
    engine = fresh_dialogpt()
    history, replies = chat(engine, 3)
    for before, reply in itertools.pairwise(replies):
        # the cache holds the previous prompt and every reply token but the last one generated
        held = len(before.prompt.input_ids) + len(before.output_ids) - 1
        assert reply.prompt.input_ids[:held] == [*before.prompt.input_ids, *before.output_ids][:held]
        assert reply.stats.prompt_tokens == len(reply.prompt.input_ids) - held
        assert reply.stats.prompt_tokens < len(reply.prompt.input_ids) // 2

    # a new engine, encoding the whole history at every turn, gives the same greedy replies
    again = fresh_dialogpt()
    params = again.default_params().with_overrides({"max_new_tokens": 12})
    for turn, reply in enumerate(replies):
        again.forget_conversation()  # forget the earlier turn: encode everything
        alone = again.reply(history[: 2 * turn + 1], params)
        assert alone.stats.prompt_tokens == len(alone.prompt.input_ids)
        assert alone.output_ids == reply.output_ids


def test_cached_logits_equal_a_full_forward(fresh_dialogpt):
    engine = fresh_dialogpt()
    history, _replies = chat(engine, 2)
    prompt = engine.prompt_for([*history, {"role": "user", "content": "最后一个问题"}])
    decoding = engine.begin_decoding(prompt.input_ids)
    assert decoding.fed < len(prompt.input_ids)
    with torch.inference_mode():
        full = engine.model(input_ids=torch.tensor([prompt.input_ids])).logits[:, -1]
    torch.testing.assert_close(decoding.logits, full, rtol=1e-4, atol=1e-4)


def test_regenerating_reuses_the_prompt_and_a_changed_history_is_encoded_again(fresh_dialogpt):
    engine = fresh_dialogpt()
    history, replies = chat(engine, 2)
    params = engine.default_params().with_overrides({"max_new_tokens": 12})
    again = engine.reply(history[:-1], params)  # regenerate the last reply
    assert again.stats.prompt_tokens == 1  # only the last prompt token is run again
    assert again.output_ids == replies[-1].output_ids

    edited = [{"role": "user", "content": "换一个话题"}, *history[1:-1]]
    other = engine.reply(edited, params)
    assert other.stats.prompt_tokens == len(other.prompt.input_ids)


@pytest.mark.slow
def test_a_failed_reply_drops_the_kept_cache(fresh_dialogpt, monkeypatch):
    engine = fresh_dialogpt()
    history, _ = chat(engine, 1)
    calls = 0
    original = type(engine).decode_reply

    def failing(self, ids):
        nonlocal calls
        calls += 1
        if calls == 2:
            raise RuntimeError("boom")
        return original(self, ids)

    monkeypatch.setattr(type(engine), "decode_reply", failing)
    with pytest.raises(Exception, match="boom"):
        engine.reply([*history, {"role": "user", "content": "再说一遍"}])
    monkeypatch.setattr(type(engine), "decode_reply", original)
    reply = engine.reply([*history, {"role": "user", "content": "再说一遍"}])
    assert reply.stats.prompt_tokens == len(reply.prompt.input_ids)


def test_a_growing_conversation_keeps_its_window_start_until_it_must_jump():
    budget = 100
    utterances: list[list[int]] = []
    starts, prompts = [], []
    for turn in range(40):
        utterances.append([turn % 7 + 10] * (3 + turn % 5))  # user
        prompt = dialogpt_input_ids(utterances, eos_id=0, max_prompt_tokens=budget).ids
        assert len(prompt) <= budget
        assert prompt[-len(utterances[-1]) - 1 :] == [*utterances[-1], 0]
        prompts.append(prompt)
        utterances.append([1] * 8)  # reply
    for before, after in itertools.pairwise(prompts):
        if after[: len(before)] == before:
            continue
        starts.append(len(after))
    # about 15 tokens a turn: once full (turn 7), dropping one exchange at a time would move the window
    # at every turn; it moves about once in three, each time dropping at least a third of the budget
    assert 2 <= len(starts) <= 40 // 3
    assert all(length <= budget * 2 // 3 for length in starts)


def test_steps_fall_at_allowed_starts_and_fit():
    sizes = [30, 5, 30, 5, 30, 5, 30, 5, 12]
    start = fit_newest_in_steps(sizes, 80, may_start=lambda i: i % 2 == 0)
    assert start % 2 == 0 and sum(sizes[start:]) <= 80
    # the newest item alone is kept even when it does not fit
    assert fit_newest_in_steps([5, 500], 80, may_start=lambda i: True) == 1
