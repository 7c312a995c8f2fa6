"""One id per model, whichever way it was loaded, and a fingerprint that tells two models of one name apart."""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from zhbench.engines.hub.discovery import local_models
from zhbench.engines.registry import load_engine
from zhbench.workbench.session import identity
from zhbench.workbench.session.identity import model_identity, path_model_id
from zhbench.workbench.session.offer import rows_on_offer

REPO = "ClueAI/ChatYuan-large-v1"


def test_a_cached_model_has_its_hub_id_by_hub_id_by_path_and_by_list_row(
    standin_dir: Callable[..., Path],
    hf_cached: Callable[[Path, str, Path], Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
    snapshot = hf_cached(tmp_path / "hf", REPO, standin_dir("chatyuan"))
    (row,) = [row for row in rows_on_offer(local_models(), gpu=False) if row.path is not None]
    assert row.name != REPO  # the list shows the catalog's name
    found = {model_identity(load_engine(spec, device="cpu")) for spec in (REPO, str(snapshot), row.key)}
    (one,) = found
    assert one.id == REPO
    assert one.fingerprint == f"revision:{snapshot.name}"  # a snapshot's revision: nothing to hash


def test_other_layouts_name_a_model_as_their_hub_does_and_a_plain_folder_by_its_name(tmp_path: Path) -> None:
    modelscope = Path(os.environ["MODELSCOPE_CACHE"])
    assert path_model_id(tmp_path / "ms" / "models" / "ClueAI--PromptCLUE" / "snapshots" / "v1") == "ClueAI/PromptCLUE"
    assert path_model_id(modelscope / "models" / "ClueAI" / "PromptCLUE-base-v1___5") == "ClueAI/PromptCLUE-base-v1.5"
    rwkv = tmp_path / "hf" / "models--BlinkDL--rwkv-4-pile-7b" / "snapshots" / "abc" / "RWKV-4.pth"
    assert path_model_id(rwkv) == "BlinkDL/rwkv-4-pile-7b/RWKV-4.pth"  # one checkpoint of several
    assert path_model_id(tmp_path / "hf" / "models--gpt2" / "snapshots" / "abc") == "gpt2"  # no owner
    assert path_model_id(tmp_path / "models" / "chatyuan") == "chatyuan"


def test_two_models_sharing_a_folder_name_are_told_apart_by_their_weights(
    standin_dir: Callable[..., Path], tmp_path: Path
) -> None:
    first = model_identity(load_engine(str(standin_dir("chatyuan")), device="cpu"))
    second = model_identity(load_engine(str(standin_dir("chatyuan", "safetensors")), device="cpu"))
    assert first.id == second.id == "tiny-chatyuan"
    assert first.fingerprint != second.fingerprint
    (weights,) = identity.weight_files(standin_dir("chatyuan", "safetensors"))
    assert second.fingerprint == "sha256:" + hashlib.sha256(weights.read_bytes()).hexdigest()  # as sha256sum says
    # a copy is the same model; changed weights are another
    copy = shutil.copytree(standin_dir("chatyuan", "safetensors"), tmp_path / "elsewhere" / "tiny-chatyuan")
    assert identity.path_fingerprint(copy) == second.fingerprint
    with (copy / weights.name).open("r+b") as file:
        file.seek(-1, os.SEEK_END)
        last = file.read(1)
        file.seek(-1, os.SEEK_END)
        file.write(bytes([last[0] ^ 1]))
    assert identity.path_fingerprint(copy) != second.fingerprint


def test_a_file_is_hashed_once_until_it_changes(
    standin_dir: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = standin_dir("gpt2-dialogbot")
    expected = identity.path_fingerprint(folder)
    monkeypatch.setattr(identity, "_sha256", lambda file: pytest.fail(f"{file} hashed again"))
    assert identity.path_fingerprint(folder) == expected


def test_a_source_that_names_its_own_files_is_asked_first(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blob = tmp_path / "ollama" / "blobs" / f"sha256-{'0' * 64}"
    monkeypatch.setattr(identity, "NAMERS", [lambda path: "qwen2.5:7b" if path == blob else None])
    assert path_model_id(blob) == "qwen2.5:7b"
    assert path_model_id(tmp_path / "other") == "other"


def test_a_record_from_before_ids_names_its_model_by_its_weights_path(tmp_path: Path) -> None:
    """A batch run written before ids named each model as it was given (``/path/to/chatyuan``): its votes name
    the model as the arena does."""
    assert identity.recorded_model_id(str(tmp_path / "chatyuan"), str(tmp_path / "chatyuan")) == "chatyuan"
    assert identity.recorded_model_id("vllm/qwen", None) == "vllm/qwen"  # a server's model: its name
