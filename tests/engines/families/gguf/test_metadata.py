"""The GGUF header reader: what a model list and a fit estimate read from a file, and one line for a bad one."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from zhbench.engines.families.gguf.metadata import (
    FILE_TYPES,
    GGML_TYPES,
    GGUFError,
    looks_like_gguf,
    read_header,
)

gguf = pytest.importorskip("gguf", reason="the gguf extra is not installed (pip install -e '.[gguf]')")

TEMPLATE = "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}"


def write_small_gguf(path: Path, *, vocab: int = 5000, tensor_type: str = "q8_0") -> Path:
    """A qwen2 header with a long vocabulary (skipped, not built) and three tensors, written by gguf's writer."""
    writer = gguf.GGUFWriter(str(path), "qwen2")
    writer.add_block_count(2)
    writer.add_context_length(32768)
    writer.add_embedding_length(64)
    writer.add_head_count(4)
    writer.add_head_count_kv(2)
    writer.add_file_type(gguf.LlamaFileType.MOSTLY_Q8_0)
    writer.add_tokenizer_model("gpt2")
    writer.add_token_list([f"tok{i}" for i in range(vocab)])
    writer.add_eos_token_id(7)
    writer.add_eot_token_id(8)
    writer.add_bos_token_id(3)
    writer.add_chat_template(TEMPLATE)
    writer.add_float32("general.sampling.temp", 0.7)
    writer.add_int32("general.sampling.top_k", 20)
    weights = np.random.default_rng(0).standard_normal((64, 64), dtype=np.float32)
    quantized = gguf.quantize(weights, gguf.GGMLQuantizationType.Q8_0)
    writer.add_tensor(
        "blk.0.attn_q.weight", quantized, raw_shape=quantized.shape, raw_dtype=gguf.GGMLQuantizationType.Q8_0
    )
    writer.add_tensor(
        "blk.0.attn_k.weight", quantized, raw_shape=quantized.shape, raw_dtype=gguf.GGMLQuantizationType.Q8_0
    )
    writer.add_tensor("output_norm.weight", np.ones(64, dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


@pytest.fixture
def small_gguf(tmp_path: Path) -> Path:
    return write_small_gguf(tmp_path / "small.gguf")


def test_header_gives_what_a_model_row_and_a_fit_estimate_need(small_gguf: Path) -> None:
    header = read_header(small_gguf)
    assert header.architecture == "qwen2"
    assert header.quantization == "Q8_0"
    assert header.parameter_count == 64 * 64 * 2 + 64
    assert header.context_length == 32768
    assert (header.layer_count, header.kv_head_count, header.head_size) == (2, 2, (16, 16))
    assert header.kv_cache_bytes(1000) == 2 * 1000 * 2 * (16 + 16) * 2
    assert header.vocab_size == 5000
    assert header.chat_template == TEMPLATE
    assert header.end_ids == {7, 8}
    assert header.bos_id == 3
    assert header.sampling == {"temp": pytest.approx(0.7), "top_k": 20}
    # the data: two q8_0 64x64 matrices (34 bytes per 32 weights) and 64 float32s, aligned
    assert header.tensor_bytes >= 2 * 64 * 64 // 32 * 34 + 64 * 4
    assert header.tensor_bytes == small_gguf.stat().st_size - header.data_offset


def test_header_matches_gguf_readers_own_reading(small_gguf: Path) -> None:
    reader = gguf.GGUFReader(str(small_gguf))
    header = read_header(small_gguf)
    assert header.data_offset == reader.data_offset
    assert [(t.name, t.type_name) for t in header.tensors] == [(t.name, t.tensor_type.name) for t in reader.tensors]


def test_long_arrays_are_skipped_not_built(tmp_path: Path) -> None:
    header = read_header(write_small_gguf(tmp_path / "big-vocab.gguf", vocab=200_000))
    assert header.vocab_size == 200_000
    assert "tokenizer.ggml.tokens" not in header.values


def test_tables_are_llama_cpps() -> None:
    """The reader's own type tables agree with the gguf package's (the writer llama.cpp ships) on every
    type that package knows, and know every type it knows."""
    ggml_types = {t.value: t for t in gguf.GGMLQuantizationType}
    assert set(ggml_types) <= set(GGML_TYPES)
    for ggml_type, known in ggml_types.items():
        assert GGML_TYPES[ggml_type] == (known.name, *gguf.GGML_QUANT_SIZES[known])
    file_types = {t.value: t for t in gguf.LlamaFileType if t.name != "GUESSED"}
    assert set(file_types) <= set(FILE_TYPES)
    for file_type, known in file_types.items():
        assert FILE_TYPES[file_type] == known.name.split("_", 1)[1]


def test_truncated_file_is_one_line(small_gguf: Path, tmp_path: Path) -> None:
    data = small_gguf.read_bytes()
    cut = tmp_path / "cut.gguf"
    cut.write_bytes(data[: len(data) - 100])
    with pytest.raises(GGUFError, match=r"truncated GGUF file: its tensors need .* missing"):
        read_header(cut)
    cut.write_bytes(data[:2000])  # inside the vocabulary
    with pytest.raises(GGUFError, match="truncated GGUF file"):
        read_header(cut)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"GGML" + bytes(40), "not a GGUF file"),
        (b"GGUF", "not a GGUF file"),
        (b"GGUF" + (9).to_bytes(4, "little") + bytes(40), "GGUF version 9"),
        (b"GGUF" + (3).to_bytes(4, "little") + (1 << 40).to_bytes(8, "little") + bytes(8), "corrupt GGUF header"),
    ],
)
def test_corrupt_file_is_one_line(tmp_path: Path, content: bytes, message: str) -> None:
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(content)
    with pytest.raises(GGUFError, match=message) as raised:
        read_header(bad)
    assert "\n" not in str(raised.value)


def test_huge_declared_string_is_refused_without_allocating(small_gguf: Path, tmp_path: Path) -> None:
    data = bytearray(small_gguf.read_bytes())
    data[24:32] = (1 << 62).to_bytes(8, "little")  # the first key's length
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(bytes(data))
    with pytest.raises(GGUFError, match="truncated GGUF file"):
        read_header(bad)


def test_looks_like_gguf(small_gguf: Path, tmp_path: Path) -> None:
    assert looks_like_gguf(small_gguf)
    assert not looks_like_gguf(tmp_path / "missing.gguf")
    (tmp_path / "x.bin").write_bytes(b"PK\x03\x04")
    assert not looks_like_gguf(tmp_path / "x.bin")
