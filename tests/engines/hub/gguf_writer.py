"""Tiny GGUF files as llama.cpp's own writer (the ``gguf`` package) writes them: a qwen2 header with a shape
and a quantization type, and a few tensors, whole or split into parts as ``gguf-split`` names them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

gguf = pytest.importorskip("gguf", reason="the gguf extra is not installed (pip install -e '.[gguf]')")

#: layers, context, width, heads, KV heads of the tiny shape every file here has
LAYERS, CONTEXT, WIDTH, HEADS, KV_HEADS = 2, 4096, 64, 4, 2
TYPES = {
    "Q8_0": (gguf.LlamaFileType.MOSTLY_Q8_0, gguf.GGMLQuantizationType.Q8_0),
    "F16": (gguf.LlamaFileType.MOSTLY_F16, gguf.GGMLQuantizationType.F16),
    "Q4_K_M": (gguf.LlamaFileType.MOSTLY_Q4_K_M, gguf.GGMLQuantizationType.Q4_0),
}


def write_gguf(path: Path, quantization: str = "Q8_0", *, matrices: int = 2, parts: int = 1) -> Path:
    """A GGUF model at ``path`` (``NAME.gguf``) of ``matrices`` 64x256 weights in ``quantization``, split into
    ``parts`` files (``NAME-00001-of-0000N.gguf`` ...) when more than one; returns the (first) file."""
    file_type, tensor_type = TYPES[quantization]
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = gguf.GGUFWriter(str(path), "qwen2", split_max_tensors=-(-(matrices + 1) // parts) if parts > 1 else 0)
    writer.add_block_count(LAYERS)
    writer.add_context_length(CONTEXT)
    writer.add_embedding_length(WIDTH)
    writer.add_head_count(HEADS)
    writer.add_head_count_kv(KV_HEADS)
    writer.add_file_type(file_type)
    writer.add_chat_template("{% for m in messages %}{{ m.content }}{% endfor %}")
    weights = np.random.default_rng(0).standard_normal((WIDTH, 256), dtype=np.float32)
    stored = gguf.quantize(weights, tensor_type)
    for index in range(matrices):
        writer.add_tensor(f"blk.{index}.ffn_up.weight", stored, raw_shape=stored.shape, raw_dtype=tensor_type)
    writer.add_tensor("output_norm.weight", np.ones(WIDTH, dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path if parts == 1 else path.with_name(f"{path.stem}-00001-of-{parts:05d}.gguf")


def without_template(source: Path, target: Path) -> Path:
    """A copy of the GGUF file ``source`` at ``target`` without its chat template (``tokenizer.chat_template``),
    as a file converted without one is, written by the ``gguf`` package's own metadata copier."""
    from gguf.scripts.gguf_new_metadata import copy_with_new_metadata, get_field_data

    reader = gguf.GGUFReader(str(source))
    arch = get_field_data(reader, gguf.Keys.General.ARCHITECTURE)
    writer = gguf.GGUFWriter(str(target), arch=arch, endianess=reader.endianess)
    copy_with_new_metadata(reader, writer, {}, [gguf.Keys.Tokenizer.CHAT_TEMPLATE])
    return target


def write_ollama_model(
    store: Path,
    name: str,
    tag: str,
    blob_source: Path | None,
    namespace: str = "library",
    template: str | None = None,
) -> Path:
    """An Ollama manifest for ``name:tag`` whose model layer is ``blob_source`` moved into the store's blobs
    (None: a manifest naming a blob that is not there), with a template layer whose blob holds ``template``
    (a Go template, as a Modelfile's TEMPLATE; None: a layer whose blob is not there); returns the blob's path."""
    import hashlib
    import json

    digest = hashlib.sha256(blob_source.read_bytes() if blob_source else name.encode()).hexdigest()
    blob = store / "blobs" / f"sha256-{digest}"
    blob.parent.mkdir(parents=True, exist_ok=True)
    if blob_source is not None:
        blob_source.rename(blob)
    template_digest = hashlib.sha256(template.encode()).hexdigest() if template is not None else "0" * 64
    if template is not None:
        (store / "blobs" / f"sha256-{template_digest}").write_text(template, encoding="utf-8")
    layers = [
        {"mediaType": "application/vnd.ollama.image.model", "digest": f"sha256:{digest}", "size": 1},
        {"mediaType": "application/vnd.ollama.image.template", "digest": f"sha256:{template_digest}", "size": 1},
    ]
    manifest = store / "manifests" / "registry.ollama.ai" / namespace / name / tag
    manifest.parent.mkdir(parents=True, exist_ok=True)
    manifest.write_text(json.dumps({"schemaVersion": 2, "layers": layers}), encoding="utf-8")
    return blob
