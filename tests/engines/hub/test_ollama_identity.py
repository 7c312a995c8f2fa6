"""An Ollama model is named as Ollama names it, its fingerprint the digest its blob is named by."""

from __future__ import annotations

from pathlib import Path

from gguf_writer import write_ollama_model

from zhbench.workbench.session.identity import path_fingerprint, path_model_id


def test_an_ollama_blob_is_named_name_tag_and_fingerprinted_by_its_digest(tmp_path: Path) -> None:
    weights = tmp_path / "model.gguf"
    weights.write_bytes(b"GGUF" + bytes(64))
    store = tmp_path / "ollama"
    blob = write_ollama_model(store, "qwen2.5", "7b", weights)
    write_ollama_model(store, "other", "latest", None)  # another model, its blob missing
    assert path_model_id(blob) == "qwen2.5:7b"
    assert path_fingerprint(blob) == "sha256:" + blob.name.removeprefix("sha256-")
    stray = store / "blobs" / ("sha256-" + "f" * 64)
    stray.write_bytes(b"x")
    assert path_model_id(stray) == stray.name  # a blob no manifest names: its file name, as any file
