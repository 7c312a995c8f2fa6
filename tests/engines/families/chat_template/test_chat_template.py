"""The chat-template family: any local causal LM with a chat template, run as transformers' own
``apply_chat_template`` + ``generate()`` run it (checked against both, on tiny Qwen2 stand-ins)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from zhbench.engines.errors import ModelLoadError
from zhbench.engines.families.chat_template.rules import (
    ChatTemplateParams,
    end_ids,
    model_defaults,
    prompt_opens_thinking,
    settled_reasoning,
    split_reasoning,
)
from zhbench.engines.local.checkpoints import SAFETENSORS_INDEX
from zhbench.engines.registry import detect_family, load_engine, write_standin

SHARED = Path(__file__).resolve().parents[5] / "shared" / "data" / "chat"
QWEN2_TOKENIZER = SHARED / "qwen2-tokenizer"
TEMPLATES = sorted((SHARED / "templates").glob("*.jinja")) if SHARED.is_dir() else []
needs_shared = pytest.mark.skipif(not QWEN2_TOKENIZER.is_dir(), reason="../shared/data/chat is absent")

HISTORIES: dict[str, list[dict[str, str]]] = {
    "one question": [{"role": "user", "content": "你好"}],
    "punctuation and newlines": [
        {"role": "user", "content": "第一行：“引号”，（括号）！\n第二行？\n\n第三行……"},
        {"role": "assistant", "content": "好的。\n- 一\n- 二"},
        {"role": "user", "content": "继续，谢谢。"},
    ],
    "empty messages": [
        {"role": "user", "content": ""},
        {"role": "assistant", "content": ""},
        {"role": "user", "content": "再问一次"},
    ],
    "many turns": [
        {"role": "user" if i % 2 == 0 else "assistant", "content": f"第{i}句，话说{i}遍。"} for i in range(41)
    ],
}


@pytest.fixture(scope="module")
def real_vocabulary(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A stand-in with the real Qwen2 tokenizer (151,936 ids); its template is swapped per test."""
    folder = tmp_path_factory.mktemp("qwen2-real-vocabulary") / "tiny-qwen2"
    return write_standin("chat-template", folder, options={"tokenizer": str(QWEN2_TOKENIZER)})


@needs_shared
@pytest.mark.parametrize("template", TEMPLATES, ids=lambda path: path.stem)
@pytest.mark.parametrize("history", HISTORIES, ids=str)
@pytest.mark.parametrize("system", ["", "你是一个乐于助人的助手。"], ids=["no-system", "system"])
def test_the_ids_fed_are_apply_chat_template_with_the_models_own_template(
    real_vocabulary: Path, template: Path, history: str, system: str
) -> None:
    engine = load_engine(str(real_vocabulary), device="cpu")
    text = template.read_text(encoding="utf-8")
    engine.tokenizer.chat_template = engine.template = text  # the model's own template, as if it shipped it
    messages = [{"role": "system", "content": system}] * bool(system) + HISTORIES[history]
    for thinking in (True, False):
        params = ChatTemplateParams(system_prompt=system, enable_thinking=thinking, max_new_tokens=64)
        prompt = engine.prompt_for(HISTORIES[history], params)
        reads_thinking = {"enable_thinking": thinking} if "enable_thinking" in text else {}
        expected = engine.tokenizer.apply_chat_template(
            messages, add_generation_prompt=True, tokenize=True, **reads_thinking
        )["input_ids"]
        assert prompt.input_ids == expected
        assert prompt.text == engine.tokenizer.apply_chat_template(
            messages, add_generation_prompt=True, tokenize=False, **reads_thinking
        )


@needs_shared
def test_the_real_vocabulary_gives_the_known_ids(real_vocabulary: Path) -> None:
    engine = load_engine(str(real_vocabulary), device="cpu")
    ids = engine.prompt_for([{"role": "user", "content": "你好"}]).input_ids
    assert ids == [151644, 872, 198, 108386, 151645, 198, 151644, 77091, 198]  # <|im_start|>user\n你好<|im_end|>…
    assert engine.end_ids == {151643, 151645}  # generation_config lists both: reading one would run on


def test_a_stand_in_is_found_loaded_and_refuses_unknown_settings(standin_dir: Callable[..., Path]) -> None:
    folder = standin_dir("chat-template")
    assert detect_family(folder) == "chat-template" and (folder / "chat_template.jinja").is_file()
    engine = load_engine(str(folder), device="cpu")
    assert list(engine.presets()) == ["model-defaults", "greedy"]
    defaults = engine.default_params()
    assert (defaults.temperature, defaults.top_p, defaults.top_k, defaults.repetition_penalty) == (0.7, 0.8, 20, 1.1)
    assert not defaults.greedy and defaults.max_new_tokens == 512
    with pytest.raises(ValueError, match="unknown parameter 'task'"):
        defaults.with_overrides({"task": "qa"})


def test_greedy_and_seeded_replies_equal_generate(standin_dir: Callable[..., Path]) -> None:
    engine = load_engine(str(standin_dir("chat-template")), device="cpu")
    history = [{"role": "user", "content": "你好，今天天气怎么样？"}]
    sampled = engine.reply(history, engine.default_params().with_overrides({"max_new_tokens": 24, "seed": 7}))
    ids = torch.tensor([sampled.prompt.input_ids])
    torch.manual_seed(7)
    expected = engine.model.generate(
        input_ids=ids,
        attention_mask=torch.ones_like(ids),
        do_sample=True,
        temperature=0.7,
        top_p=0.8,
        top_k=20,
        repetition_penalty=1.1,
        max_new_tokens=24,
    )
    assert sampled.output_ids == expected[0, ids.shape[1] :].tolist()
    greedy = engine.reply(history, engine.presets()["greedy"].with_overrides({"max_new_tokens": 24}))
    expected = engine.model.generate(
        input_ids=ids, attention_mask=torch.ones_like(ids), do_sample=False, repetition_penalty=1.1, max_new_tokens=24
    )
    assert greedy.output_ids == expected[0, ids.shape[1] :].tolist()


def test_the_next_turn_reuses_the_cache_of_the_turn_before(standin_dir: Callable[..., Path]) -> None:
    engine = load_engine(str(standin_dir("chat-template")), device="cpu")
    params = engine.presets()["greedy"].with_overrides({"max_new_tokens": 12})
    history = [{"role": "user", "content": "你好"}]
    first = engine.reply(history, params)
    history += [{"role": "assistant", "content": first.history_content}, {"role": "user", "content": "再说一遍"}]
    second = engine.reply(history, params)
    assert second.stats.prompt_tokens < len(second.prompt.input_ids) // 2
    engine.forget_conversation()
    again = engine.reply(history, params)
    assert again.stats.prompt_tokens == len(again.prompt.input_ids) and again.output_ids == second.output_ids


def sliding_window_standin(folder: Path, window: int) -> Path:
    """A tiny Mistral (a sliding-window architecture) in the stand-in's layout, its window ``window`` tokens."""
    from transformers import MistralConfig, MistralForCausalLM

    from zhbench.engines.standins.common import save_weights

    write_standin("chat-template", folder)
    qwen = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    shape = ("hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads")
    config = {key: qwen[key] for key in (*shape, "vocab_size", "bos_token_id", "eos_token_id", "rms_norm_eps")}
    config |= {"model_type": "mistral", "sliding_window": window, "max_position_embeddings": 4096}
    published = {"architectures": ["MistralForCausalLM"], **config}
    (folder / "config.json").write_text(json.dumps(published), encoding="utf-8")
    torch.manual_seed(0)
    weights = MistralForCausalLM(MistralConfig(**config)).state_dict()
    save_weights({name: tensor.to(torch.bfloat16) for name, tensor in weights.items()}, folder, "safetensors")
    return folder


def test_a_sliding_window_model_goes_on_past_its_window_turn_after_turn(tmp_path: Path) -> None:
    """Past the window, a sliding-window layer keeps no older positions, so the cache cannot be cut back to
    what the next prompt shares: the prompt runs whole, and the reply is a fresh engine's."""
    engine = load_engine(str(sliding_window_standin(tmp_path / "mistral", window=16)), device="cpu")
    params = engine.presets()["greedy"].with_overrides({"max_new_tokens": 12})
    history: list[dict[str, str]] = []
    for turn in range(3):
        history.append({"role": "user", "content": f"第{turn}个问题：请介绍一下你自己。"})
        reply = engine.reply(history, params)
        history.append({"role": "assistant", "content": reply.history_content})
    assert len(reply.prompt.input_ids) > 16
    engine.forget_conversation()
    assert engine.reply(history[:-1], params).output_ids == reply.output_ids


@pytest.mark.slow
def test_a_long_chat_keeps_the_system_prompt_and_the_newest_question(standin_dir: Callable[..., Path]) -> None:
    engine = load_engine(str(standin_dir("chat-template")), device="cpu")
    history = []
    for turn in range(400):
        history.append({"role": "user", "content": f"第{turn}个问题，很长很长。" * 3})
        history.append({"role": "assistant", "content": "嗯。" * 20})
    history.append({"role": "user", "content": "最后的问题"})
    params = ChatTemplateParams(system_prompt="系统提示", max_new_tokens=256)
    prompt = engine.prompt_for(history, params)
    assert len(prompt.input_ids) <= engine.max_positions - 256
    assert prompt.text.startswith("<|im_start|>system\n系统提示<|im_end|>\n<|im_start|>user\n")
    assert prompt.text.endswith("最后的问题<|im_end|>\n<|im_start|>assistant\n") and "第0个问题" not in prompt.text


def test_sharded_safetensors_and_bin_weights_load_the_same_model(
    standin_dir: Callable[..., Path], tmp_path: Path
) -> None:
    from safetensors.torch import load_file, save_file

    single = standin_dir("chat-template")
    sharded = tmp_path / "sharded"
    shutil.copytree(single, sharded)
    state = load_file(str(sharded / "model.safetensors"))
    (sharded / "model.safetensors").unlink()
    names = sorted(state)
    shards = {"model-00001-of-00002.safetensors": names[::2], "model-00002-of-00002.safetensors": names[1::2]}
    for file, keys in shards.items():
        save_file({k: state[k] for k in keys}, str(sharded / file), metadata={"format": "pt"})
    weight_map = {key: file for file, keys in shards.items() for key in keys}
    (sharded / SAFETENSORS_INDEX).write_text(json.dumps({"weight_map": weight_map}), encoding="utf-8")
    question = [{"role": "user", "content": "你好"}]
    params = ChatTemplateParams(greedy=True, max_new_tokens=8)
    replies = {
        "single": load_engine(str(single), device="cpu").reply(question, params).output_ids,
        "sharded": load_engine(str(sharded), device="cpu").reply(question, params).output_ids,
        "bin": load_engine(str(standin_dir("chat-template", "bin")), device="cpu").reply(question, params).output_ids,
    }
    assert replies["single"] == replies["sharded"] == replies["bin"]


def test_a_model_that_needs_its_own_code_is_refused_and_none_of_it_runs(
    standin_dir: Callable[..., Path], tmp_path: Path
) -> None:
    folder = tmp_path / "remote-code"
    shutil.copytree(standin_dir("chat-template"), folder)
    ran = tmp_path / "the-model-code-ran"
    (folder / "modeling_baichuan.py").write_text(f"open({str(ran)!r}, 'w').close()\n", encoding="utf-8")
    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    config["architectures"] = ["BaichuanForCausalLM"]
    config["auto_map"] = {"AutoModelForCausalLM": "modeling_baichuan.BaichuanForCausalLM"}
    (folder / "config.json").write_text(json.dumps(config), encoding="utf-8")
    assert detect_family(folder) == "chat-template"
    with pytest.raises(ModelLoadError, match=r"modeling_baichuan\.BaichuanForCausalLM in auto_map.*does not run code"):
        load_engine(str(folder), device="cpu")
    assert not ran.exists()
    del config["auto_map"]
    (folder / "config.json").write_text(json.dumps(config), encoding="utf-8")
    with pytest.raises(ModelLoadError, match="architecture BaichuanForCausalLM is not one transformers"):
        load_engine(str(folder), device="cpu")


def test_end_ids_are_the_union_of_every_place_that_names_one() -> None:
    assert end_ids({"eos_token_id": [151645, 151643]}, {"eos_token_id": 151643}, 151645) == {151643, 151645}
    assert end_ids({}, {"eos_token_id": 2}, None) == {2}
    assert end_ids({"eos_token_id": True}, {}, 7) == {7}


def test_the_defaults_are_the_models_generation_config_else_transformers() -> None:
    assert model_defaults({}).greedy and model_defaults({}).top_k == 50
    qwen3 = model_defaults({"do_sample": True, "temperature": 0.6, "top_p": 0.95, "top_k": 20, "max_new_tokens": 9})
    assert (qwen3.greedy, qwen3.temperature, qwen3.top_p, qwen3.top_k, qwen3.max_new_tokens) == (
        False,
        0.6,
        0.95,
        20,
        9,
    )


@pytest.mark.parametrize(
    "text, opened, expected",
    [
        ("<think>\n想一想\n</think>\n\n答案", False, ("想一想", "答案")),
        ("想一想\n</think>\n\n答案", True, ("想一想", "答案")),  # the prompt opened <think> (R1 distills)
        ("<think>\n还在想", False, ("还在想", "")),
        ("直接回答", False, ("", "直接回答")),
        ("<think>\n\n</think>\n\n不想了", False, ("", "不想了")),  # thinking switched off
    ],
)
def test_a_reply_splits_into_its_thinking_and_its_answer(text: str, opened: bool, expected: tuple[str, str]) -> None:
    assert split_reasoning(text, opened=opened) == expected


def test_a_tag_half_written_waits_before_it_streams() -> None:
    assert settled_reasoning("<th", opened=False) == ""
    assert settled_reasoning("<think>\n想</th", opened=False) == "<think>\n想"
    assert settled_reasoning("答案 a<b", opened=False) == "答案 a<b"
    assert prompt_opens_thinking("<|im_start|>assistant\n<think>\n") and not prompt_opens_thinking("<think></think>")


@needs_shared
def test_a_thinking_reply_streams_its_thinking_apart_and_feeds_back_what_the_template_keeps(tmp_path: Path) -> None:
    qwen3 = SHARED / "templates" / "Qwen-Qwen3-0.6B.jinja"
    folder = write_standin(
        "chat-template", tmp_path / "qwen3", options={"tokenizer": str(QWEN2_TOKENIZER), "template": str(qwen3)}
    )
    engine = load_engine(str(folder), device="cpu")
    think = engine.tokenizer.encode("<think>\n先想一想。\n</think>\n\n", add_special_tokens=False)
    answer = engine.tokenizer.encode("这是答案。", add_special_tokens=False)
    script = [*think, *answer, 151645]  # the model's tokens: thinking, answer, <|im_end|>

    def scripted_source(generation: object) -> object:
        yield from script

    engine.token_source = scripted_source  # type: ignore[method-assign]
    thinking, text = [], []
    history = [{"role": "user", "content": "问题"}]
    reply = engine.reply(history, on_text=text.append, on_reasoning=thinking.append)
    assert (reply.reasoning, reply.text) == ("先想一想。", "这是答案。")
    assert "".join(thinking) == "先想一想。" and "".join(text) == "这是答案。"
    assert reply.stats.reasoning_tokens == len(think) and reply.stats.new_tokens == len(script)
    # the next turn: Qwen3's own template drops the old reasoning from what the model sees
    history += [{"role": "assistant", "content": reply.history_content}, {"role": "user", "content": "下一个"}]
    prompt = engine.prompt_for(history)
    assert "这是答案。" in prompt.text and "先想一想" not in prompt.text
