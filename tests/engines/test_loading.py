"""Loading real file layouts safely: formats, detection, hub caches, and clear errors for broken folders."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
import torch

from zhbench.engines.errors import ModelLoadError, ModelNotFoundError, UnknownFamilyError, UnsafeCheckpointError
from zhbench.engines.hub.resolve import resolve_model
from zhbench.engines.registry import STANDIN_MARKER, detect_family, load_engine, write_standin

FAMILIES = ["gpt2-dialogbot", "dialogpt-zh", "chatyuan", "promptclue"]
QUESTION = [{"role": "user", "content": "你好"}]


def copy_of(standin_dir, family: str, tmp_path: Path, name: str | None = None) -> Path:
    target = tmp_path / (name or f"copy-{family}")
    shutil.copytree(standin_dir(family), target)
    return target


@pytest.mark.slow
@pytest.mark.parametrize("family", FAMILIES)
def test_bin_and_safetensors_load_the_same_model(standin_dir, family):
    from_bin = load_engine(str(standin_dir(family, "bin")), device="cpu")
    from_safetensors = load_engine(str(standin_dir(family, "safetensors")), device="cpu")
    assert (standin_dir(family, "bin") / "pytorch_model.bin").is_file()
    assert (standin_dir(family, "safetensors") / "model.safetensors").is_file()
    params = from_bin.default_params().with_overrides({"seed": 3, "max_new_tokens": 16})
    assert from_bin.reply(QUESTION, params).output_ids == from_safetensors.reply(QUESTION, params).output_ids
    assert from_bin.describe().device == "cpu" and from_bin.describe().dtype == "float32"


def test_clue_checkpoints_load_with_an_untied_head(engine_for, standin_dir):
    """ClueAI files carry lm_head apart from the shared embedding; transformers 5 must not tie them."""
    engine = engine_for("chatyuan")
    state = torch.load(standin_dir("chatyuan") / "pytorch_model.bin", weights_only=True)
    assert not torch.equal(state["lm_head.weight"], state["shared.weight"])
    assert torch.equal(engine.model.lm_head.weight, state["lm_head.weight"])
    assert torch.equal(engine.model.shared.weight, state["shared.weight"])


def test_a_pickle_that_runs_code_is_refused_and_never_runs(standin_dir, tmp_path):
    folder = copy_of(standin_dir, "gpt2-dialogbot", tmp_path)
    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self):
            return (Path.touch, (marker,))

    torch.save({"transformer.wte.weight": torch.zeros(2), "payload": Exploit()}, folder / "pytorch_model.bin")
    with pytest.raises(UnsafeCheckpointError, match=r"pytorch_model\.bin.*refused"):
        load_engine(str(folder))
    assert not marker.exists()


@pytest.mark.parametrize(
    "family, remove, message",
    [
        ("gpt2-dialogbot", "vocab.txt", "missing tokenizer file vocab.txt"),
        ("dialogpt-zh", ("merges.txt", "tokenizer.json"), "missing tokenizer file merges.txt"),
        ("chatyuan", "spiece.model", "missing tokenizer file spiece.model"),
        ("promptclue", "pytorch_model.bin", "no weights"),
    ],
)
def test_missing_files_are_named(standin_dir, tmp_path, family, remove, message):
    folder = copy_of(standin_dir, family, tmp_path)
    for name in (remove,) if isinstance(remove, str) else remove:
        (folder / name).unlink()
    with pytest.raises(ModelLoadError, match=message):
        load_engine(str(folder), family=family)


def test_unreadable_and_misshapen_weights_are_named(standin_dir, tmp_path):
    broken = copy_of(standin_dir, "dialogpt-zh", tmp_path, "broken")
    (broken / "pytorch_model.bin").write_bytes(b"not a checkpoint")
    with pytest.raises(ModelLoadError, match=r"pytorch_model\.bin: unreadable weights"):
        load_engine(str(broken))

    lacking = copy_of(standin_dir, "dialogpt-zh", tmp_path, "lacking")
    state = torch.load(lacking / "pytorch_model.bin", weights_only=True)
    del state["transformer.h.1.mlp.c_fc.weight"]
    torch.save(state, lacking / "pytorch_model.bin")
    with pytest.raises(ModelLoadError, match=r"lack transformer\.h\.1\.mlp\.c_fc\.weight"):
        load_engine(str(lacking))

    misshapen = copy_of(standin_dir, "dialogpt-zh", tmp_path, "misshapen")
    state = torch.load(misshapen / "pytorch_model.bin", weights_only=True)
    state["transformer.h.0.attn.c_attn.weight"] = torch.zeros(3, 3)
    torch.save(state, misshapen / "pytorch_model.bin")
    with pytest.raises(ModelLoadError, match=r"c_attn"):
        load_engine(str(misshapen))


def test_broken_config_is_named(standin_dir, tmp_path):
    folder = copy_of(standin_dir, "gpt2-dialogbot", tmp_path)
    (folder / "config.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(ModelLoadError, match=r"config\.json: unreadable JSON"):
        load_engine(str(folder))


@pytest.mark.parametrize("family", FAMILIES)
def test_families_are_detected_from_their_files(standin_dir, tmp_path, family):
    folder = copy_of(standin_dir, family, tmp_path, f"some-{family}-checkpoint")
    (folder / STANDIN_MARKER).unlink()
    assert detect_family(folder) == family


def test_chatyuan_and_promptclue_share_a_layout_and_need_a_name(standin_dir, tmp_path):
    folder = copy_of(standin_dir, "chatyuan", tmp_path, "t5-checkpoint")
    (folder / STANDIN_MARKER).unlink()
    with pytest.raises(UnknownFamilyError, match=r"could be chatyuan or promptclue.*--family"):
        detect_family(folder)
    assert load_engine(str(folder), family="promptclue").family == "promptclue"
    assert detect_family(folder, "ClueAI/ChatYuan-large-v1") == "chatyuan"


def test_unknown_folders_and_families_are_refused(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelLoadError, match=r"missing config\.json"):
        load_engine(str(tmp_path / "empty"))
    with pytest.raises(ModelNotFoundError, match="no such file"):
        load_engine(str(tmp_path / "absent"))
    with pytest.raises(UnknownFamilyError, match="unknown family 'gpt5'"):
        load_engine(str(tmp_path / "empty"), family="gpt5")


def test_hub_ids_resolve_from_the_local_caches(standin_dir, tmp_path, monkeypatch, hf_cached):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
    monkeypatch.setenv("MODELSCOPE_CACHE", str(tmp_path / "ms"))
    snapshot = hf_cached(tmp_path / "hf", "ClueAI/ChatYuan-large-v1", standin_dir("chatyuan"))
    assert resolve_model("ClueAI/ChatYuan-large-v1") == snapshot
    engine = load_engine("ClueAI/ChatYuan-large-v1")
    assert engine.family == "chatyuan"

    ms_folder = tmp_path / "ms" / "models" / "ClueAI" / "PromptCLUE-base-v1-5"
    shutil.copytree(standin_dir("promptclue"), ms_folder)
    (ms_folder / STANDIN_MARKER).unlink()
    assert resolve_model("ClueAI/PromptCLUE-base-v1-5") == ms_folder
    assert load_engine("ClueAI/PromptCLUE-base-v1-5").family == "promptclue"

    with pytest.raises(ModelNotFoundError, match="not in the local Hugging Face or ModelScope cache"):
        resolve_model("nobody/nothing")


def test_a_folder_of_several_rwkv_checkpoints_lists_each_and_asks_for_one(tmp_path):
    from zhbench.engines.hub.discovery import local_models

    (single,) = write_standin("rwkv4", tmp_path / "one").glob("*.pth")
    repo = tmp_path / "models" / "rwkv-4-pile"
    repo.mkdir(parents=True)
    for name in ("RWKV-4-Pile-169M.pth", "RWKV-4-Pile-430M.pth"):
        shutil.copy(single, repo / name)
        shutil.copy(single.parent / "20B_tokenizer.json", repo / "20B_tokenizer.json")
    with pytest.raises(ModelLoadError, match=r"holds 2 \.pth checkpoints .*pass the one to load"):
        load_engine(str(repo))
    found = {m.path.name: m for m in local_models([tmp_path / "models"])}
    assert set(found) == {"RWKV-4-Pile-169M.pth", "RWKV-4-Pile-430M.pth"}
    assert all(m.family == "rwkv4" for m in found.values())
    assert load_engine(str(found["RWKV-4-Pile-430M.pth"].path)).family == "rwkv4"


def _set_config(folder: Path, **values: object) -> None:
    import json

    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    (folder / "config.json").write_text(json.dumps({**config, **values}), encoding="utf-8")


BROKEN = {
    # issue 18, item 18: each of these ended in a traceback (or, for n_layer -5, loaded and failed later)
    "a text file as the weights": ("gpt2-dialogbot", lambda f: (f / "pytorch_model.bin").write_text("text"),
                                   "not a torch checkpoint"),
    "empty weights": ("gpt2-dialogbot", lambda f: (f / "pytorch_model.bin").write_bytes(b""), "an empty file"),
    "an empty spiece.model": ("chatyuan", lambda f: (f / "spiece.model").write_bytes(b""), "cannot load the tokenizer"),
    "a garbage vocab.json": ("dialogpt-zh", lambda f: ((f / "vocab.json").write_text("{oops"),
                                                       (f / "tokenizer.json").unlink()), "cannot load the tokenizer"),
    "a binary vocab.txt": ("gpt2-dialogbot", lambda f: (f / "vocab.txt").write_bytes(bytes(range(256)) * 4),
                           "cannot load the tokenizer"),
    "an empty vocab.txt": ("gpt2-dialogbot", lambda f: (f / "vocab.txt").write_text(""), "tokenizer"),
    "a word for a size": ("gpt2-dialogbot", lambda f: _set_config(f, n_layer="two"),
                          "n_layer is 'two'; it must be a positive whole number"),
    "a negative size": ("gpt2-dialogbot", lambda f: _set_config(f, n_layer=-5), "n_layer is -5"),
    "more layers than the weights hold": ("gpt2-dialogbot", lambda f: _set_config(f, n_layer=100000),
                                          "asks for n_layer 100000; the weights hold 2 layers"),
    "EVA with more layers than its weights": ("eva2", lambda f: _set_config(f, num_layers=100000),
                                              "asks for num_layers 100000; the weights hold 2 layers"),
}  # fmt: skip


@pytest.mark.parametrize("case", BROKEN, ids=str)
def test_a_broken_model_folder_is_one_clear_error_naming_the_file(standin_dir, tmp_path, case):
    family, break_it, message = BROKEN[case]
    folder = copy_of(standin_dir, family, tmp_path)
    break_it(folder)
    with pytest.raises(ModelLoadError, match=re.escape(message)):
        load_engine(str(folder), device="cpu")


def test_a_shard_index_pointing_outside_the_model_folder_is_refused(standin_dir, tmp_path):
    import json

    folder = copy_of(standin_dir, "chat-template", tmp_path)
    weight_map = {"model.embed_tokens.weight": "../../../../etc/passwd"}
    (folder / "model.safetensors.index.json").write_text(json.dumps({"weight_map": weight_map}), encoding="utf-8")
    with pytest.raises(ModelLoadError, match=r"refused: it names '\.\./\.\./\.\./\.\./etc/passwd', outside"):
        load_engine(str(folder), device="cpu")


def test_a_pickle_refused_for_a_builtin_says_it_could_run_code(standin_dir, tmp_path):
    """Issue 18, item 24: torch 2.13 words a refused REDUCE differently; it was called "not a torch checkpoint"."""
    import os

    folder = copy_of(standin_dir, "gpt2-dialogbot", tmp_path)

    class Exploit:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    torch.save({"transformer.wte.weight": torch.zeros(2), "payload": Exploit()}, folder / "pytorch_model.bin")
    refused = r"refused: its pickle asks for posix\.system, which could run code"
    with pytest.raises(UnsafeCheckpointError, match=refused):
        load_engine(str(folder), device="cpu")
