"""EVA2.0 as a family: its context, its decoding against upstream's ``generate()`` call, loading and errors."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import torch

from tests.engines.families.eva2.eva_upstream_reference import write_eos_prone_copy
from zhbench.engines.errors import ModelLoadError, UnsafeCheckpointError
from zhbench.engines.families.eva2.engine import MAX_INPUT_TOKENS, eva2_defaults, eva2_input_ids
from zhbench.engines.local.steps.seq2seq import DecoderStep
from zhbench.engines.registry import STANDIN_MARKER, detect_family, load_engine
from zhbench.engines.types import StopReason
from zhbench.workbench.cli import main

SEP, START = 4, 29810
QUESTION = [{"role": "user", "content": "你好，今天天气怎么样？"}]
ROOT = Path(__file__).resolve().parents[4]


def copy_of(standin_dir, tmp_path: Path, name: str = "copy-eva2") -> Path:
    target = tmp_path / name
    shutil.copytree(standin_dir("eva2"), target)
    return target


# --- the encoder input (src/eva_interactive.py) ------------------------------------------------


def test_each_utterance_ends_in_sep_and_the_input_in_reply_start():
    assert eva2_input_ids([[11, 12], [13], [14, 15]], sep_id=SEP, start_id=START).ids == [
        11,
        12,
        4,
        13,
        4,
        14,
        15,
        4,
        START,
    ]


def test_only_the_newest_eight_utterances_are_kept():
    utterances = [[100 + i] for i in range(12)]
    fitted = eva2_input_ids(utterances, sep_id=SEP, start_id=START)
    assert fitted.ids == [token for i in range(4, 12) for token in (100 + i, SEP)] + [START]
    assert fitted.dropped_messages == 4 and not fitted.truncated


def test_an_older_shorter_utterance_is_kept_after_a_longer_one_is_skipped():
    newest, long_one, short_old = [1] * 60, [2] * 70, [3] * 5
    fitted = eva2_input_ids([short_old, long_one, newest], sep_id=SEP, start_id=START)
    assert fitted.ids == [*short_old, SEP, *newest, SEP, START]  # 6 + 61 + 1 fits; adding 71 would not
    assert fitted.dropped_messages == 1  # the long one, in the middle
    assert len(eva2_input_ids([[7] * 126], sep_id=SEP, start_id=START).ids) == MAX_INPUT_TOKENS


def test_a_newest_message_too_long_keeps_its_end():
    """Deviation: upstream would answer without the message; here its last tokens are kept."""
    message = list(range(1000, 1300))
    fitted = eva2_input_ids([[5, 6], message], sep_id=SEP, start_id=START)
    assert fitted.ids == [*message[-126:], SEP, START]
    assert fitted.dropped_messages == 1 and fitted.truncated


def test_the_engine_builds_the_input_from_its_tokenizer_and_keeps_reply_ids(engine_for):
    engine = engine_for("eva2")
    history = [*QUESTION, {"role": "assistant", "content": "还行"}, {"role": "user", "content": "明天呢？"}]
    encode = engine.tokenizer.encode
    prompt = engine.prompt_for(history)
    assert prompt.input_ids == [
        *encode("你好，今天天气怎么样？"),
        SEP,
        *encode("还行"),
        SEP,
        *encode("明天呢？"),
        SEP,
        START,
    ]
    assert prompt.text == "你好,今天天气怎么样?<sep>还行<sep>明天呢?<sep><s_0>"

    reply = engine.reply(QUESTION, engine.presets()["sample"].with_overrides({"seed": 3, "max_new_tokens": 8}))
    fed_back = [*QUESTION, {"role": "assistant", "content": reply.text}, {"role": "user", "content": "嗯"}]
    ids = engine.prompt_for(fed_back).input_ids
    start = len(encode("你好，今天天气怎么样？")) + 1
    assert ids[start : start + len(reply.output_ids)] == reply.output_ids  # as upstream's gen[0][1:]


# --- decoding against upstream's generate() call ----------------------------------------------


def upstream_generate(engine, input_ids, *, seed, num_beams, temperature, max_length):
    """src/eva_interactive.py's call with the interactive script's arguments."""
    torch.manual_seed(seed)
    with torch.no_grad():
        out = engine.model.generate(
            torch.tensor([input_ids]),
            max_length=max_length,
            min_length=2,
            do_sample=True,
            num_beams=num_beams,
            temperature=temperature,
            top_k=0,
            top_p=0.9,
            length_penalty=1.6,
            no_repeat_ngram_size=3,
            encoder_no_repeat_ngram_size=3,
            repetition_penalty=1.6,
            use_cache=True,
        )
    return out[0, 1:].tolist()


#: Upstream's own ``generate()`` output (after the start token) on the ``eos_prone`` stand-in, for seeds
#: 1…6: thu-coai/EVA@a9c15c9's EVAModel on transformers 4.26.1, called as src/eva_interactive.py calls
#: it with the interactive script's arguments and ``max_length=40``; made by ``eva_upstream_reference.py``.
UPSTREAM_BEAM_SAMPLE = {
    1: [5951, 4],
    2: [4447, 24235, 22949, 15256, 16049, 17795, 4],
    3: [21521, 20514, 21115, 17623, 27150, 11746, 23565, 26071, 4],
    4: [18311, 4],
    5: [24412, 4],
    6: [27183, 28418, 27363, 12376, 27338, 22441, 19087, 4],
}
#: the same call without sampling (``do_sample=False``), the same for every seed
UPSTREAM_BEAM_SEARCH = [
    15063,
    14823,
    328,
    17770,
    19016,
    15675,
    27286,
    10649,
    4438,
    5132,
    7645,
    5554,
    3734,
    5311,
    20657,
    9542,
    8148,
    19434,
    3444,
    12401,
    12228,
    19507,
    28764,
    20457,
    17240,
    1200,
    26720,
    12869,
    1945,
    24914,
    23968,
    4107,
    21283,
    90,
    6453,
    2550,
    18055,
    19307,
    7809,
]


@pytest.fixture(scope="module")
def eos_prone(standin_dir, tmp_path_factory):
    """A stand-in that often ends its replies, so finished beams, the length penalty and stopping all count."""
    folder = write_eos_prone_copy(standin_dir("eva2"), tmp_path_factory.mktemp("eva2") / "eos-prone")
    return load_engine(str(folder), device="cpu")


@pytest.mark.slow
def test_the_default_is_upstreams_beam_sample_as_transformers_4_ran_it(eos_prone):
    """Upstream ran on transformers 4.2x, whose beam sampling transformers 5 no longer does."""
    engine = eos_prone
    assert list(engine.presets()) == ["beam-sample", "sample"]
    assert engine.default_params() == engine.presets()["beam-sample"]
    assert engine.default_params().num_beams == 4 and engine.presets()["sample"].num_beams == 1
    for seed, expected in UPSTREAM_BEAM_SAMPLE.items():
        reply = engine.reply(QUESTION, eva2_defaults().with_overrides({"seed": seed, "max_new_tokens": 39}))
        assert reply.output_ids == expected, f"seed {seed}"
        assert reply.text == engine.tokenizer.decode(expected)


def test_beam_search_without_sampling_as_transformers_4_ran_it(eos_prone):
    params = eva2_defaults().with_overrides({"greedy": True, "max_new_tokens": 39})
    assert eos_prone.reply(QUESTION, params).output_ids == UPSTREAM_BEAM_SEARCH


def test_beam_sample_text_comes_only_once_decoding_is_done(engine_for):
    engine = engine_for("eva2")
    steps: list[int] = []
    steps_at_piece: list[int] = []
    hook = engine.model.decoder.register_forward_hook(lambda *args: steps.append(1))
    params = eva2_defaults().with_overrides({"seed": 5, "max_new_tokens": 12})
    try:
        reply = engine.reply(QUESTION, params, on_text=lambda piece: steps_at_piece.append(len(steps)))
    finally:
        hook.remove()
    assert reply.stats.new_tokens == 12
    assert steps_at_piece and set(steps_at_piece) == {len(steps)}


@pytest.mark.slow
def test_streaming_sampling_matches_generate_token_for_token(engine_for):
    engine = engine_for("eva2")
    for seed in (1, 2):
        pieces: list[str] = []
        params = engine.presets()["sample"].with_overrides({"seed": seed, "max_new_tokens": 20})
        reply = engine.reply(QUESTION, params, on_text=pieces.append)
        expected = upstream_generate(
            engine, reply.prompt.input_ids, seed=seed, num_beams=1, temperature=0.7, max_length=21
        )
        assert reply.output_ids == expected[: len(reply.output_ids)]
        assert len(pieces) > 1 and "".join(pieces) == reply.text


def test_greedy_decoding_is_reproducible_and_is_argmax(engine_for):
    engine = engine_for("eva2")
    params = engine.presets()["sample"].with_overrides({"greedy": True, "max_new_tokens": 20})
    first, again = engine.reply(QUESTION, params), engine.reply(QUESTION, params.with_overrides({"seed": 99}))
    assert first.output_ids == again.output_ids
    with torch.no_grad():
        out = engine.model.generate(
            torch.tensor([first.prompt.input_ids]),
            do_sample=False,
            max_length=21,
            min_length=2,
            repetition_penalty=1.6,
            no_repeat_ngram_size=3,
            encoder_no_repeat_ngram_size=3,
        )
    assert first.output_ids == out[0, 1:].tolist()[: len(first.output_ids)]


def test_beam_sample_is_cancelled_within_one_token(engine_for, monkeypatch):
    engine = engine_for("eva2")
    cancel = threading.Event()
    steps: list[int] = []
    run = DecoderStep.run

    def count_steps(self, token):
        steps.append(1)
        if len(steps) == 3:
            cancel.set()
        return run(self, token)

    monkeypatch.setattr(DecoderStep, "run", count_steps)
    reply = engine.reply(QUESTION, eva2_defaults().with_overrides({"max_new_tokens": 100}), cancel=cancel)
    assert reply.stats.stop_reason is StopReason.CANCELLED
    assert len(steps) == 3


# --- loading -----------------------------------------------------------------------------------


def test_the_fp16_file_loads_as_float32_on_the_cpu(engine_for, standin_dir):
    engine = engine_for("eva2")
    state = torch.load(standin_dir("eva2") / "pytorch_model.bin", weights_only=True)
    assert state["lm_head.weight"].dtype == torch.float16 and "role_embeds.weight" not in state
    assert engine.describe().dtype == "float32"
    assert {p.dtype for p in engine.model.parameters()} == {torch.float32}
    assert torch.equal(engine.model.lm_head.weight, state["lm_head.weight"].float())
    assert torch.equal(engine.model.decoder.embed_tokens.weight, state["decoder.embed_tokens.weight"].float())
    assert engine.model.encoder.embed_tokens is engine.model.shared


def test_bin_and_safetensors_give_the_same_reply(standin_dir):
    from_bin = load_engine(str(standin_dir("eva2", "bin")), device="cpu")
    from_safetensors = load_engine(str(standin_dir("eva2", "safetensors")), device="cpu")
    params = from_bin.presets()["sample"].with_overrides({"seed": 3, "max_new_tokens": 12})
    assert from_bin.reply(QUESTION, params).output_ids == from_safetensors.reply(QUESTION, params).output_ids


def test_detected_by_its_layout(standin_dir, tmp_path):
    folder = copy_of(standin_dir, tmp_path, "EVA2.0-xlarge")
    (folder / STANDIN_MARKER).unlink()
    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    assert "model_type" not in config and config["attn_scale"] is True
    assert detect_family(folder) == "eva2"
    assert detect_family(standin_dir("gpt2-dialogbot")) == "gpt2-dialogbot"  # vocab.txt too, but a gpt2 config


@pytest.mark.parametrize(
    "key",
    [
        "decoder.block.1.layer.2.DenseReluDense.wo.weight",
        "encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight",
    ],
)
def test_a_missing_weight_is_named(standin_dir, tmp_path, key):
    folder = copy_of(standin_dir, tmp_path)
    state = torch.load(folder / "pytorch_model.bin", weights_only=True)
    del state[key]
    torch.save(state, folder / "pytorch_model.bin")
    with pytest.raises(ModelLoadError, match=f"weights lack {re.escape(key)}$"):  # that one, and no "more"
        load_engine(str(folder))


def test_a_pickle_that_runs_code_is_refused(standin_dir, tmp_path):
    folder = copy_of(standin_dir, tmp_path)
    marker = tmp_path / "ran"

    class Exploit:
        def __reduce__(self):
            return (Path.touch, (marker,))

    torch.save({"shared.weight": torch.zeros(2), "payload": Exploit()}, folder / "pytorch_model.bin")
    with pytest.raises(UnsafeCheckpointError, match=r"pytorch_model\.bin.*refused"):
        load_engine(str(folder))
    assert not marker.exists()


def test_a_misshapen_weight_is_named(standin_dir, tmp_path):
    folder = copy_of(standin_dir, tmp_path)
    state = torch.load(folder / "pytorch_model.bin", weights_only=True)
    state["encoder.block.1.layer.0.SelfAttention.q.weight"] = torch.zeros(3, 3, dtype=torch.float16)
    torch.save(state, folder / "pytorch_model.bin")
    with pytest.raises(
        ModelLoadError, match=r"weight encoder\.block\.1\.layer\.0\.SelfAttention\.q\.weight has shape \(3, 3\)"
    ):
        load_engine(str(folder))


def test_broken_config_and_vocabulary_are_named(standin_dir, tmp_path):
    folder = copy_of(standin_dir, tmp_path, "bad-config")
    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    (folder / "config.json").write_text(json.dumps({**config, "d_model": "wide"}), encoding="utf-8")
    with pytest.raises(ModelLoadError, match=r"config\.json: not a valid EVA config"):
        load_engine(str(folder))

    folder = copy_of(standin_dir, tmp_path, "big-vocab")
    with (folder / "vocab.txt").open("a", encoding="utf-8") as vocab:
        vocab.write("多余\n")
    with pytest.raises(ModelLoadError, match=r"vocab\.txt: 30001 tokens, but the model has only 30000"):
        load_engine(str(folder))

    folder = copy_of(standin_dir, tmp_path, "no-vocab")
    (folder / "vocab.txt").unlink()
    with pytest.raises(ModelLoadError, match=r"missing tokenizer file vocab\.txt"):
        load_engine(str(folder), family="eva2")


@pytest.mark.slow
def test_loading_and_replying_print_nothing(standin_dir):
    """jieba logs to stderr on first use; in the full-screen app that would corrupt the screen."""
    code = (
        "from engines.registry import load_engine; "
        f"e = load_engine({str(standin_dir('eva2'))!r}, device='cpu'); "
        "p = e.presets()['sample'].with_overrides({'max_new_tokens': 4}); "
        "e.reply([{'role': 'user', 'content': '你好，世界'}], p)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert (result.stdout, result.stderr) == ("", "")


def test_cli_make_tiny_prompt_and_ask(capsys, tmp_path):
    folder = tmp_path / "tiny"
    assert main(["make-tiny", "eva2", str(folder)]) == 0
    assert {p.name for p in folder.iterdir()} >= {"config.json", "vocab.txt", "pytorch_model.bin"}
    history = tmp_path / "h.json"
    history.write_text(json.dumps(QUESTION, ensure_ascii=False), encoding="utf-8")
    capsys.readouterr()
    assert main(["prompt", "--model", str(folder), "--history", str(history), "--json"]) == 0
    prompt = json.loads(capsys.readouterr().out)
    assert prompt["family"] == "eva2" and prompt["input_ids"][-2:] == [SEP, START]
    assert (
        main(
            [
                "ask",
                "--model",
                str(folder),
                "--preset",
                "sample",
                "--seed",
                "2",
                "--max-new-tokens",
                "6",
                "--json",
                "你好",
            ]
        )
        == 0
    )
    data = json.loads(capsys.readouterr().out)
    assert data["params"]["num_beams"] == 1 and data["params"]["encoder_no_repeat_ngram_size"] == 3
    assert data["stats"]["new_tokens"] <= 6


def test_float16_as_on_a_gpu_runs_and_agrees_with_float32(eos_prone):
    """The dtype a GPU gets (the CUDA path itself is untested here: no GPU)."""
    half = load_engine(str(eos_prone.model_path), device="cpu", dtype="float16")
    assert {p.dtype for p in half.model.parameters()} == {torch.float16} and half.describe().dtype == "float16"
    encoder_ids = torch.tensor([half.prompt_for(QUESTION).input_ids])
    reply_ids = torch.tensor([[START, 11, 12, 13]])
    with torch.no_grad():
        ours = half.model(input_ids=encoder_ids, decoder_input_ids=reply_ids, use_cache=False).logits.float()
        full = eos_prone.model(input_ids=encoder_ids, decoder_input_ids=reply_ids, use_cache=False).logits
    torch.testing.assert_close(ours, full, atol=2e-2, rtol=0)
    for preset in ("beam-sample", "sample"):
        reply = half.reply(QUESTION, half.presets()[preset].with_overrides({"seed": 2, "max_new_tokens": 39}))
        assert reply.stats.stop_reason in (StopReason.EOS, StopReason.LENGTH) and reply.output_ids
