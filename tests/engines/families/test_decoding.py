"""Replies token for token against each model's own upstream decoding, on the same stand-in weights."""

from __future__ import annotations

import threading

import pytest
import torch
import torch.nn.functional as F

from zhbench.engines.families.clue_t5.promptclue import promptclue_sampling

QUESTION = [{"role": "user", "content": "你好，今天天气怎么样？"}]


def upstream_dialogbot_reply(engine, input_ids, *, max_len, seed, repetition_penalty=1.0, topk=8, temperature=1.0):
    """dialogbot/gpt/interact.py: re-forward the whole sequence each step, penalise, ban [UNK], top-k, sample."""
    torch.manual_seed(seed)
    model, tokenizer = engine.model, engine.tokenizer
    ids = list(input_ids)
    response = []
    with torch.no_grad():
        for _ in range(max_len):
            logits = model(input_ids=torch.tensor([ids])).logits[0, -1, :].clone()
            for token in set(response):
                logits[token] /= repetition_penalty
            logits = logits / temperature
            logits[tokenizer.unk_token_id] = -float("inf")
            threshold = torch.topk(logits, topk)[0][..., -1, None]
            logits[logits < threshold] = -float("inf")
            next_token = torch.multinomial(F.softmax(logits, dim=-1), num_samples=1)
            if next_token.item() == tokenizer.sep_token_id:
                break
            response.append(next_token.item())
            ids.append(next_token.item())
    return response


@pytest.mark.slow
def test_dialogbot_sampled_reply_matches_upstream_loop(engine_for):
    engine = engine_for("gpt2-dialogbot")
    for seed, penalty in ((11, 1.0), (12, 1.3)):
        params = engine.default_params().with_overrides(
            {"seed": seed, "max_new_tokens": 25, "repetition_penalty": penalty}
        )
        reply = engine.reply(QUESTION, params)
        expected = upstream_dialogbot_reply(
            engine, reply.prompt.input_ids, max_len=25, seed=seed, repetition_penalty=penalty
        )
        assert [t for t in reply.output_ids if t != engine.tokenizer.sep_token_id] == expected
        assert reply.text == "".join(engine.tokenizer.convert_ids_to_tokens(expected))
        assert "[UNK]" not in reply.text


def test_dialogpt_greedy_reply_matches_the_cards_generate(engine_for):
    engine = engine_for("dialogpt-zh")
    history = [
        {"role": "user", "content": "你好"},
        {"role": "assistant", "content": "你好呀"},
        {"role": "user", "content": "今天天气怎么样？"},
    ]
    reply = engine.reply(history, engine.default_params().with_overrides({"max_new_tokens": 40}))
    bot_input_ids = torch.tensor([reply.prompt.input_ids])
    eos = engine.tokenizer.eos_token_id
    with torch.no_grad():
        expected = engine.model.generate(bot_input_ids, max_new_tokens=40, pad_token_id=eos, do_sample=False)
    new = expected[0, bot_input_ids.shape[-1] :].tolist()
    assert reply.output_ids == new[: len(reply.output_ids)]
    assert reply.text == engine.tokenizer.decode(new, skip_special_tokens=True)


@pytest.mark.slow
def test_chatyuan_seeded_sampling_matches_the_cards_generate(engine_for):
    """The card's answer(sample=True); generate() also applies its default top_k=50, and so must we."""
    engine = engine_for("chatyuan")
    for seed in (1, 2):
        reply = engine.reply(QUESTION, engine.default_params().with_overrides({"seed": seed, "max_new_tokens": 30}))
        encoding = engine.tokenizer(
            text=[reply.prompt.text], truncation=True, padding=True, max_length=768, return_tensors="pt"
        )
        torch.manual_seed(seed)
        with torch.no_grad():
            out = engine.model.generate(
                **encoding, max_new_tokens=30, do_sample=True, top_p=1, temperature=0.7, no_repeat_ngram_size=3
            )
        expected = out[0, 1:].tolist()
        assert reply.output_ids == expected[: len(reply.output_ids)]
        decoded = engine.tokenizer.decode(out[0], skip_special_tokens=True)
        assert reply.text == decoded.replace("\\n", "\n").replace("\\t", "\t")


@pytest.mark.slow
def test_promptclue_beam_search_matches_the_card(engine_for):
    engine = engine_for("promptclue")
    reply = engine.reply(QUESTION)
    encoding = engine.tokenizer(
        text=[reply.prompt.text], truncation=True, padding=True, max_length=768, return_tensors="pt"
    )
    with torch.no_grad():
        out = engine.model.generate(**encoding, max_length=128, num_beams=4, length_penalty=0.6)
    assert reply.text == engine.tokenizer.decode(out[0], skip_special_tokens=True).replace("_", "\n")
    assert reply.stats.ttft_s == reply.stats.total_s or reply.stats.new_tokens <= 1 or reply.stats.ttft_s > 0


@pytest.mark.slow
def test_promptclue_sampling_option_matches_the_card(engine_for):
    engine = engine_for("promptclue")
    params = promptclue_sampling().with_overrides({"seed": 5})
    reply = engine.reply(QUESTION, params)
    encoding = engine.tokenizer(
        text=[reply.prompt.text], truncation=True, padding=True, max_length=768, return_tensors="pt"
    )
    torch.manual_seed(5)
    with torch.no_grad():
        out = engine.model.generate(**encoding, max_length=64, do_sample=True, top_p=0.8)
    assert reply.output_ids == out[0, 1:].tolist()[: len(reply.output_ids)]
    assert reply.stats.new_tokens <= 63


def test_same_seed_same_reply_and_seed_is_reported(engine_for):
    engine = engine_for("chatyuan")
    first = engine.reply(QUESTION, engine.default_params().with_overrides({"seed": 42, "max_new_tokens": 20}))
    again = engine.reply(QUESTION, engine.default_params().with_overrides({"seed": 42, "max_new_tokens": 20}))
    other = engine.reply(QUESTION, engine.default_params().with_overrides({"seed": 43, "max_new_tokens": 20}))
    assert first.output_ids == again.output_ids
    assert first.output_ids != other.output_ids
    unseeded = engine.reply(QUESTION, engine.default_params().with_overrides({"max_new_tokens": 20}))
    assert unseeded.params.seed is not None
    replay = engine.reply(QUESTION, unseeded.params)
    assert replay.output_ids == unseeded.output_ids


def test_two_engines_sampling_at_once_keep_their_seeds(engine_for):
    """Each engine has its own generator: concurrent A/B replies equal the same replies run alone."""
    a, b = engine_for("chatyuan"), engine_for("gpt2-dialogbot")
    pa = a.default_params().with_overrides({"seed": 7, "max_new_tokens": 60})
    pb = b.default_params().with_overrides({"seed": 8, "max_new_tokens": 60})
    alone = (a.reply(QUESTION, pa).output_ids, b.reply(QUESTION, pb).output_ids)
    results = {}
    threads = [
        threading.Thread(target=lambda: results.__setitem__("a", a.reply(QUESTION, pa).output_ids)),
        threading.Thread(target=lambda: results.__setitem__("b", b.reply(QUESTION, pb).output_ids)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert (results["a"], results["b"]) == alone


def test_a_reply_fed_back_keeps_its_generated_ids(engine_for):
    """Upstream keeps generated ids in its history; re-encoding decoded byte-BPE text need not give them back."""
    engine = engine_for("dialogpt-zh")
    reply = engine.reply(QUESTION, engine.default_params().with_overrides({"max_new_tokens": 12}))
    history = [*QUESTION, {"role": "assistant", "content": reply.text}, {"role": "user", "content": "然后呢？"}]
    ids = engine.prompt_for(history).input_ids
    start = len(engine.prompt_for(QUESTION).input_ids)
    reply_ids = [t for t in reply.output_ids if t != engine.tokenizer.eos_token_id]
    assert ids[start : start + len(reply_ids)] == reply_ids
