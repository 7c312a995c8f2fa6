"""The gguf family: a GGUF file converted from a tiny Qwen2 stand-in, run by llama.cpp in this process.

What a user would notice: the prompt ids are the Hugging Face model's own, replies are llama.cpp's own,
a reply stops at once, the next turn reuses the cache, and a bad file is one clear line.
"""

from __future__ import annotations

import json
import shutil
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from zhbench.engines.errors import ModelLoadError, ZhbenchError
from zhbench.engines.families.gguf.metadata import read_header
from zhbench.engines.local.chat_render import ChatTemplateError
from zhbench.engines.registry import detect_family, load_engine, write_standin
from zhbench.engines.types import StopReason

pytest.importorskip("llama_cpp", reason="the gguf extra is not installed (pip install -e '.[gguf]')")
gguf = pytest.importorskip("gguf", reason="the gguf extra is not installed (pip install -e '.[gguf]')")

SHARED_QWEN2 = Path(__file__).resolve().parents[5] / "shared" / "data" / "chat" / "qwen2-tokenizer"
HISTORY: list[Any] = [
    {"role": "user", "content": "你好，今天天气怎么样？123456 hello  world"},
    {"role": "assistant", "content": "很好!\n\n  谢谢 <think>想</think>"},
    {"role": "user", "content": "北京 12.5%   ok？ <|im_end|> 😀"},
]


@pytest.fixture(scope="module", autouse=True)
def _own_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """The sha256 cache goes to a folder of this module's, not the developer's."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("xdg-cache")))
        yield


@pytest.fixture(scope="module")
def standin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A q8_0 stand-in with the small tokenizer trained here (what a clone without ../shared has)."""
    return write_standin("gguf", tmp_path_factory.mktemp("gguf") / "tiny")


@pytest.fixture(scope="module")
def engine(standin: Path) -> Any:
    return load_engine(str(standin))


def converted_without(folder: Path, tmp: Path, *drop: str) -> Path:
    """The stand-in's Hugging Face folder, without ``drop``, converted again to a GGUF of its own."""
    from zhbench.engines.standins.gguf import convert_qwen2

    source = tmp / "hf"
    shutil.copytree(folder / "hf", source)
    for name in drop:
        (source / name).unlink()
    return convert_qwen2(source, tmp / "model.gguf", "q8_0")


def reference_ids(hf_folder: Path, messages: list[Any]) -> list[int]:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(hf_folder))
    return list(tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True, return_dict=False))


# --- the file and its prompt --------------------------------------------------------------------------------


def test_standin_is_a_gguf_file_detected_as_gguf(standin: Path) -> None:
    header = read_header(standin)
    assert standin.suffix == ".gguf"
    assert (header.architecture, header.quantization) == ("qwen2", "Q8_0")
    assert header.chat_template and "<|im_start|>" in header.chat_template
    assert detect_family(standin) == "gguf"


@pytest.mark.parametrize("system", ["", "你是一个乐于助人的助手。"])
def test_prompt_ids_equal_apply_chat_template_on_the_model_it_was_converted_from(
    engine: Any, standin: Path, system: str
) -> None:
    prompt = engine.prompt_for(HISTORY, engine.default_params().with_overrides({"system_prompt": system}))
    messages = ([{"role": "system", "content": system}] if system else []) + HISTORY
    assert prompt.input_ids == reference_ids(standin.parent / "hf", messages)
    assert prompt.text.endswith("<|im_start|>assistant\n")


@pytest.mark.skipif(not SHARED_QWEN2.is_dir(), reason="../shared/data/chat/qwen2-tokenizer is not here")
def test_real_qwen2_vocabulary_gives_the_same_ids_as_transformers(tmp_path: Path) -> None:
    path = write_standin("gguf", tmp_path / "qwen2", options={"tokenizer": str(SHARED_QWEN2)})
    header = read_header(path)
    assert header.vocab_size == 151936
    assert header.string("tokenizer.ggml.pre") == "qwen2"
    loaded = load_engine(str(path))
    assert loaded.prompt_for(HISTORY).input_ids == reference_ids(path.parent / "hf", HISTORY)
    assert {151643, 151645} <= loaded.end_ids  # <|endoftext|>, and <|im_end|> which llama.cpp adds by its text


def test_prompt_command_shows_llama_cpps_ids(standin: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from zhbench.workbench.cli import main

    history = tmp_path / "history.json"
    history.write_text(json.dumps(HISTORY, ensure_ascii=False), encoding="utf-8")
    assert main(["prompt", "--model", str(standin), "--history", str(history), "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["family"] == "gguf"
    assert shown["input_ids"] == reference_ids(standin.parent / "hf", HISTORY)


def test_describe_names_the_quantization_and_the_files_sha256(engine: Any, standin: Path) -> None:
    import hashlib

    info = engine.describe()
    assert info.family == "gguf" and info.dtype == "Q8_0"
    assert info.details["quantization"] == "Q8_0"
    assert info.details["sha256"] == hashlib.sha256(standin.read_bytes()).hexdigest()
    assert info.weight_bytes is not None and info.weight_bytes > 0
    assert info.to_dict()["sha256"] == info.details["sha256"]


def test_sha256_is_computed_once_and_again_when_the_file_changes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from zhbench.engines.families.gguf.sha256 import cache_path, file_sha256

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))  # a digest cache of its own, to falsify

    model = tmp_path / "m.gguf"
    model.write_bytes(b"GGUF one")
    first = file_sha256(model)
    cache = json.loads(cache_path().read_text(encoding="utf-8"))
    cache = {key: "kept" for key in cache}
    cache_path().write_text(json.dumps(cache), encoding="utf-8")
    assert file_sha256(model) == "kept"  # not read again
    assert not any(p.name.endswith(".json") for p in tmp_path.iterdir())  # nothing written beside the model
    model.write_bytes(b"GGUF two!")
    assert file_sha256(model) not in ("kept", first)


# --- replies ---------------------------------------------------------------------------------------------


def completion(path: Path, ids: list[int], max_tokens: int, **sampling: Any) -> dict[str, Any]:
    """llama.cpp's own ``create_completion`` on a fresh ``Llama`` over the same file."""
    from llama_cpp import Llama

    llama = Llama(str(path), n_ctx=1024, verbose=False)
    try:
        result: dict[str, Any] = llama.create_completion(ids, max_tokens=max_tokens, **sampling)  # type: ignore[assignment]
        return result
    finally:
        llama.close()


def test_greedy_reply_is_llama_cpps_create_completion(engine: Any, standin: Path) -> None:
    params = engine.presets()["greedy"].with_overrides({"max_new_tokens": 12})
    reply = engine.reply(HISTORY[:1], params)
    prompt = engine.prompt_for(HISTORY[:1], params)
    expected = completion(standin, prompt.input_ids, 12, temperature=0.0)
    assert reply.text == expected["choices"][0]["text"]
    assert reply.stats.new_tokens == expected["usage"]["completion_tokens"]


def test_seeded_sampling_is_llama_cpps_and_reproducible(engine: Any, standin: Path) -> None:
    params = engine.default_params().with_overrides({"max_new_tokens": 16, "seed": 1234, "temperature": 1.5})
    first = engine.reply(HISTORY[:1], params)
    again = engine.reply(HISTORY[:1], params)
    other = engine.reply(HISTORY[:1], params.with_overrides({"seed": 99}))
    assert first.output_ids == again.output_ids
    assert first.output_ids != other.output_ids
    prompt = engine.prompt_for(HISTORY[:1], params)
    sampling = {"top_k": params.top_k, "top_p": params.top_p, "min_p": params.min_p}
    sampling["repeat_penalty"] = params.repetition_penalty
    # token for token what llama.cpp's own loop (the generator create_completion draws from) gives, same seed
    from llama_cpp import Llama

    llama = Llama(str(standin), n_ctx=1024, verbose=False)
    llama.set_seed(1234)
    generated = llama.generate(prompt.input_ids, temp=1.5, **sampling)
    assert first.output_ids == [next(generated) for _ in first.output_ids]
    llama.close()
    # and its text is what create_completion shows (which runs on past max_tokens to finish a character)
    expected = completion(standin, prompt.input_ids, 16, temperature=1.5, seed=1234, **sampling)
    assert first.text and expected["choices"][0]["text"].startswith(first.text)


def test_reply_stops_within_one_token_of_cancel(engine: Any) -> None:
    cancel = threading.Event()
    pieces: list[str] = []

    def on_text(piece: str) -> None:
        pieces.append(piece)
        cancel.set()

    params = engine.default_params().with_overrides({"max_new_tokens": 64, "seed": 5, "temperature": 2.0})
    reply = engine.reply(HISTORY[:1], params, cancel=cancel, on_text=on_text)
    assert reply.stats.stop_reason == StopReason.CANCELLED
    assert reply.stats.new_tokens <= 4  # the tokens before the first piece of text, and none after it


def test_next_turn_feeds_only_what_the_cache_does_not_hold(engine: Any) -> None:
    params = engine.presets()["greedy"].with_overrides({"max_new_tokens": 6})
    first = engine.reply(HISTORY[:1], params)
    history = [*HISTORY[:1], {"role": "assistant", "content": first.text}, {"role": "user", "content": "再说一遍"}]
    second = engine.reply(history, params)
    whole = len(engine.prompt_for(history, params).input_ids)
    assert 0 < second.stats.prompt_tokens < whole - len(engine.prompt_for(HISTORY[:1], params).input_ids) + 4


def test_oldest_exchanges_are_dropped_to_fit_the_context(tmp_path: Path, standin: Path) -> None:
    small = load_engine(str(standin), extra={"n_ctx": "256"})
    long_history: list[Any] = []
    for turn in range(12):
        long_history += [
            {"role": "user", "content": f"第{turn}个问题：" + "天气" * 10},
            {"role": "assistant", "content": "好"},
        ]
    long_history.append({"role": "user", "content": "最后的问题"})
    prompt = small.prompt_for(long_history, small.default_params().with_overrides({"max_new_tokens": 64}))
    assert prompt.fit.window == 256 and prompt.fit.dropped_messages > 0
    assert len(prompt.input_ids) <= 256 - 64
    assert "最后的问题" in prompt.text and "第0个问题" not in prompt.text


# --- defaults --------------------------------------------------------------------------------------------


def test_defaults_come_from_the_headers_sampling_then_generation_config_then_llama_cpp(
    engine: Any, standin: Path, tmp_path: Path
) -> None:
    # the stand-in's converter wrote generation_config.json's sampling into general.sampling.*
    assert list(engine.presets()) == ["general.sampling", "greedy"]
    assert (engine.default_params().top_k, engine.default_params().greedy) == (20, False)
    assert engine.default_params().temperature == pytest.approx(0.7)

    bare = converted_without(standin.parent, tmp_path, "generation_config.json")
    assert not read_header(bare).sampling
    plain = load_engine(str(bare))
    assert next(iter(plain.presets())) == "llama.cpp-defaults"
    assert (plain.default_params().top_k, plain.default_params().min_p) == (40, 0.05)

    (bare.parent / "generation_config.json").write_text(json.dumps({"do_sample": False, "top_k": 7}))
    beside = load_engine(str(bare))
    assert next(iter(beside.presets())) == "generation_config.json"
    assert beside.default_params().greedy and beside.default_params().top_k == 7


# --- bad input: one line each ------------------------------------------------------------------------------


def test_truncated_file_is_one_line(standin: Path, tmp_path: Path) -> None:
    cut = tmp_path / "cut.gguf"
    cut.write_bytes(standin.read_bytes()[:-1000])
    with pytest.raises(ModelLoadError, match="truncated GGUF file") as raised:
        load_engine(str(cut), family="gguf")
    assert "\n" not in str(raised.value)


def test_unknown_architecture_is_one_line(tmp_path: Path) -> None:
    writer = gguf.GGUFWriter(str(tmp_path / "odd.gguf"), "zhbench-odd")
    writer.add_chat_template("{{ messages[0].content }}")
    writer.add_tensor("token_embd.weight", __import__("numpy").zeros((4, 4), dtype="float32"))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    with pytest.raises(ModelLoadError, match=r"architecture 'zhbench-odd' is not one this llama\.cpp build knows"):
        load_engine(str(tmp_path / "odd.gguf"), family="gguf")


def test_file_without_a_template_says_how_to_give_one(
    standin: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from zhbench.engines.standins.chat_template import TEMPLATE_FILE
    from zhbench.workbench.cli import main

    bare = converted_without(standin.parent, tmp_path, TEMPLATE_FILE)
    with pytest.raises(ModelLoadError, match=r"has no chat template in its metadata .* --template NAME \(chatml"):
        load_engine(str(bare))
    named = load_engine(str(bare), extra={"template": "chatml"})
    assert named.describe().details["chat_template"] == "catalog chatml"
    assert named.prompt_for(HISTORY).input_ids == reference_ids(standin.parent / "hf", HISTORY)
    history = tmp_path / "history.json"
    history.write_text(json.dumps(HISTORY, ensure_ascii=False), encoding="utf-8")
    assert main(["prompt", "--model", str(bare), "--history", str(history), "--json", "--template", "chatml"]) == 0
    assert json.loads(capsys.readouterr().out)["input_ids"] == reference_ids(standin.parent / "hf", HISTORY)


def test_template_that_fails_to_render_is_one_line(standin: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken.jinja"
    broken.write_text(
        "{% if messages %}{{ raise_exception('only one user message, please') }}{% endif %}", encoding="utf-8"
    )
    loaded = load_engine(str(standin), extra={"template": str(broken)})
    with pytest.raises(ChatTemplateError, match=r"refused the conversation.*only one user message") as raised:
        loaded.prompt_for(HISTORY)
    assert "\n" not in str(raised.value)


def test_without_the_extra_a_gguf_model_says_what_to_install(standin: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "llama_cpp", None)  # import llama_cpp now fails, as without the extra
    with pytest.raises(ZhbenchError, match=r"pip install -e '\.\[gguf\]'"):
        load_engine(str(standin))


def test_make_tiny_writes_the_quantization_asked_for(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from zhbench.workbench.cli import main

    assert main(["make-tiny", "gguf", str(tmp_path / "f16"), "--quant", "f16"]) == 0
    written = Path(capsys.readouterr().out.strip().rsplit(" ", 1)[-1])
    assert read_header(written).quantization == "F16"


def test_ask_json_names_the_quantization_and_the_files_sha256(
    standin: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import hashlib

    from zhbench.workbench.cli import main

    assert main(["ask", "--model", str(standin), "--json", "--max-new-tokens", "2", "你好"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["quantization"] == "Q8_0"
    assert shown["sha256"] == hashlib.sha256(standin.read_bytes()).hexdigest()
