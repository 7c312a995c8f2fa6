"""Where GGUF models are found: Ollama's store (read in place, named as Ollama names them), LM Studio's
folders, split files as one model, projectors left out, and their memory need from the header alone."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.engines.hub.gguf_writer import CONTEXT, HEADS, KV_HEADS, LAYERS, WIDTH, write_gguf, write_ollama_model
from zhbench.engines.api import LoadOptions
from zhbench.engines.errors import ModelNotFoundError
from zhbench.engines.families.gguf.files import chat_model_files
from zhbench.engines.families.gguf.memory import estimate_memory, facts
from zhbench.engines.families.gguf.metadata import GGUFError, read_header
from zhbench.engines.hub.discovery import folder_size, local_models
from zhbench.engines.hub.lmstudio import lmstudio_models
from zhbench.engines.hub.ollama import display_name, manifest_path, ollama_models
from zhbench.engines.hub.resolve import resolve_model


@pytest.fixture
def ollama_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    store = tmp_path / "ollama-models"
    monkeypatch.setenv("OLLAMA_MODELS", str(store))
    return store


def test_ollama_models_are_named_as_ollama_names_them_and_their_blob_is_read_in_place(tmp_path, ollama_store):
    blob = write_ollama_model(ollama_store, "qwen2.5", "7b", write_gguf(tmp_path / "a.gguf", "Q4_K_M"))
    other = write_ollama_model(ollama_store, "mymodel", "q8", write_gguf(tmp_path / "b.gguf"), namespace="someone")
    before = {p: p.stat().st_mtime_ns for p in ollama_store.rglob("*")}

    found = {model.name: model for model in ollama_models()}
    assert set(found) == {"qwen2.5:7b", "someone/mymodel:q8"}
    assert (found["qwen2.5:7b"].blob, found["someone/mymodel:q8"].blob) == (blob, other)
    assert resolve_model("qwen2.5:7b") == blob  # `--model qwen2.5:7b`: the blob itself, not a copy
    assert resolve_model("someone/mymodel:q8") == other
    with pytest.raises(ModelNotFoundError, match=r"qwen2\.5:14b: no such file or folder"):
        resolve_model("qwen2.5:14b")
    assert {p: p.stat().st_mtime_ns for p in ollama_store.rglob("*")} == before  # nothing written or moved



def test_two_tags_of_one_blob_are_a_row_each(tmp_path, ollama_store):
    blob = write_ollama_model(ollama_store, "qwen2.5", "0.5b", write_gguf(tmp_path / "a.gguf"))
    tags = ollama_store / "manifests" / "registry.ollama.ai" / "library" / "qwen2.5"
    (tags / "latest").write_bytes((tags / "0.5b").read_bytes())  # as `ollama pull qwen2.5` leaves them

    rows = {model.id: model for model in local_models()}
    assert {"qwen2.5:0.5b", "qwen2.5:latest"} <= set(rows)
    assert rows["qwen2.5:0.5b"].path == rows["qwen2.5:latest"].path == blob

def test_a_manifest_pointing_at_a_missing_blob_is_one_row_with_its_reason(tmp_path, ollama_store):
    write_ollama_model(ollama_store, "qwen2.5", "7b", write_gguf(tmp_path / "a.gguf"))
    write_ollama_model(ollama_store, "deepseek-r1", "1.5b", None)  # its blob was deleted
    (ollama_store / "manifests" / "registry.ollama.ai" / "library" / "broken").mkdir()
    (ollama_store / "manifests" / "registry.ollama.ai" / "library" / "broken" / "latest").write_text("{not json")

    rows = {model.id: model for model in local_models() if model.problem is not None}
    assert set(rows) == {"deepseek-r1:1.5b", "broken:latest"}
    missing = rows["deepseek-r1:1.5b"].problem
    assert missing is not None and "weights blob sha256-" in missing and "is missing" in missing
    assert rows["broken:latest"].problem == "unreadable manifest (JSONDecodeError)"
    with pytest.raises(ModelNotFoundError, match=r"^deepseek-r1:1\.5b \(Ollama\): its weights blob sha256-\w+ is"):
        resolve_model("deepseek-r1:1.5b")


def test_split_files_are_one_model_and_projectors_none(tmp_path):
    folder = tmp_path / "Qwen2.5-7B-Instruct-GGUF"
    whole = write_gguf(folder / "qwen2.5-7b-instruct-q8_0.gguf")
    first = write_gguf(folder / "qwen2.5-7b-instruct-f16.gguf", "F16", matrices=4, parts=3)
    write_gguf(folder / "mmproj-qwen2.5-f16.gguf", "F16")
    parts = sorted(folder.glob("qwen2.5-7b-instruct-f16-*.gguf"))
    assert [p.name[-20:] for p in parts] == [f"-0000{i}-of-00003.gguf" for i in (1, 2, 3)]

    assert chat_model_files(folder.iterdir()) == [first, whole]
    assert folder_size(first) == sum(part.stat().st_size for part in parts)
    assert facts(first).parameters == 4 * WIDTH * 256 + WIDTH  # every part's tensors
    assert facts(first).quantization == "F16" and facts(whole).quantization == "Q8_0"
    parts[2].unlink()
    with pytest.raises(GGUFError, match="1 of its split parts are not beside it"):
        estimate_memory(first, LoadOptions(device="cpu"), None)


def test_lm_studio_folders_list_each_model_file(tmp_path, monkeypatch):
    current, older = tmp_path / "lmstudio", tmp_path / "lm-studio-cache"
    monkeypatch.setattr("zhbench.engines.hub.lmstudio.FOLDERS", (current, older))
    repository = current / "lmstudio-community" / "Qwen2.5-7B-Instruct-GGUF"
    write_gguf(repository / "Qwen2.5-7B-Instruct-Q4_K_M.gguf", "Q4_K_M")
    write_gguf(repository / "mmproj-model-f16.gguf", "F16")
    write_gguf(older / "TheBloke" / "Yi-6B-GGUF" / "yi-6b.Q8_0.gguf")
    (current / "lmstudio-community" / "notes.txt").write_text("not a model")

    assert [name for name, _ in lmstudio_models()] == [
        "lmstudio-community/Qwen2.5-7B-Instruct-GGUF/Qwen2.5-7B-Instruct-Q4_K_M.gguf",
        "TheBloke/Yi-6B-GGUF/yi-6b.Q8_0.gguf",
    ]


def test_the_memory_need_is_the_tensor_bytes_and_the_kv_cache_at_the_context_used(tmp_path):
    first = write_gguf(tmp_path / "m.gguf", "Q8_0", matrices=4, parts=2)
    parts = sorted(tmp_path.glob("m-*.gguf"))
    tensors = sum(read_header(part).tensor_bytes for part in parts)
    head = WIDTH // HEADS
    need = estimate_memory(first, LoadOptions(device="cpu"), None)
    assert (need.placement, need.weights_bytes, need.context) == ("Q8_0", tensors, CONTEXT)  # trained context (< cap)
    assert need.cache_bytes == LAYERS * CONTEXT * KV_HEADS * (head + head) * 2  # F16 keys and values
    at_1000 = estimate_memory(first, LoadOptions(device="cpu"), 1000)
    assert (at_1000.context, at_1000.cache_bytes) == (1000, LAYERS * 1000 * KV_HEADS * (head + head) * 2)
    assert need.weights_bytes < sum(part.stat().st_size for part in parts) < need.weights_bytes + 4096 * len(parts)


def test_hostile_manifests_are_one_line_each_and_nothing_outside_the_store_is_read(tmp_path, ollama_store):
    secret = tmp_path / "secret.gguf"
    write_gguf(secret)
    library = ollama_store / "manifests" / "registry.ollama.ai" / "library"
    (library / "escape").mkdir(parents=True)
    layer = {"mediaType": "application/vnd.ollama.image.model", "digest": "sha256:../../../secret.gguf"}
    (library / "escape" / "latest").write_text(json.dumps({"layers": [layer]}), encoding="utf-8")
    (library / "huge").mkdir()
    (library / "huge" / "latest").write_bytes(b" " * (2 << 20))
    (library / "nolayer").mkdir()
    (library / "nolayer" / "latest").write_text('{"layers": [{"mediaType": "text/plain"}]}', encoding="utf-8")
    (library / "fifo").mkdir()
    os.mkfifo(library / "fifo" / "latest")  # not a file: skipped, never opened (it would block)

    problems = {model.name: model.problem for model in ollama_models()}
    assert problems == {
        "escape:latest": "its manifest's model layer has no sha256 digest",
        "huge:latest": "its manifest is too large to be one",
        "nolayer:latest": "its manifest names no model layer",
    }
    with pytest.raises(ModelNotFoundError, match="no sha256 digest"):
        resolve_model("escape:latest")


@pytest.mark.parametrize(
    ("parts", "name"),
    [
        (("registry.ollama.ai", "library", "qwen2.5", "7b"), "qwen2.5:7b"),
        (("registry.ollama.ai", "someone", "mymodel", "latest"), "someone/mymodel:latest"),
        (("hf.co", "bartowski", "Qwen2.5-7B-GGUF", "Q4_K_M"), "hf.co/bartowski/Qwen2.5-7B-GGUF:Q4_K_M"),
    ],
)
def test_names_are_ollamas_and_lead_back_to_their_manifest(parts, name, tmp_path):
    assert display_name(*parts) == name
    assert manifest_path(name, tmp_path) == tmp_path / "manifests" / Path(*parts)
    assert manifest_path(name.rpartition(":")[0], tmp_path) == tmp_path / "manifests" / Path(*parts[:3], "latest")
    assert manifest_path("../etc:passwd", tmp_path) is None
