"""Stand-ins of the gguf family: a tiny random-weight Qwen2 model converted to GGUF the way llama.cpp does.

``write_gguf_standin`` writes the chat-template family's tiny Qwen2 (a Hugging Face folder, ``hf/``) and then
converts it with ``convert_qwen2``: the steps of llama.cpp's ``convert_hf_to_gguf.py`` for
``Qwen2ForCausalLM`` (``conversion/base.py``'s ``TextModel``, ``_set_vocab_gpt2`` and ``get_vocab_base``;
``conversion/qwen.py``'s ``Qwen2Model``), written with the ``gguf`` package, the writer llama.cpp ships:
the hyperparameters, the byte-level BPE vocabulary with its token types, merges, special ids and chat
template (``gguf.SpecialVocab``), the model card's metadata with ``generation_config.json``'s sampling
(``gguf.Metadata``), and the tensors renamed by ``gguf``'s own name map, in F32, F16 or Q8_0 as the
converter's ``--outtype`` would write them. So a GGUF converted from a model and the model itself can be
compared id for id.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from zhbench.engines.errors import ZhbenchError
from zhbench.engines.standins.chat_template import write_chat_template_standin
from zhbench.engines.standins.common import mark_standin

if TYPE_CHECKING:
    import numpy as np

#: ``--quant`` -> the converter's ``--outtype`` file type name
QUANTS = ("f32", "f16", "q8_0")
#: llama.cpp's name for a byte-level BPE pre-tokenizer, by the split regex in ``tokenizer.json``: Qwen2's
#: own, and GPT-2's (``ByteLevel`` with its built-in regex, as the small tokenizer trained here has)
QWEN2_SPLIT = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)


def write_gguf_standin(
    folder: Path,
    weights_format: str = "gguf",
    *,
    quant: str = "q8_0",
    template: str | None = None,
    tokenizer: str | None = None,
) -> Path:
    """A tiny Qwen2 in ``folder/hf`` (see ``write_chat_template_standin``: ``template`` a ``.jinja`` file,
    ``tokenizer`` a folder of tokenizer files) converted to ``folder/tiny-qwen2-<QUANT>.gguf``."""
    if quant.lower() not in QUANTS:
        raise ZhbenchError(f"a gguf stand-in is written as {', '.join(QUANTS)}, not {quant}")
    folder.mkdir(parents=True, exist_ok=True)
    source = write_chat_template_standin(folder / "hf", "safetensors", template=template, tokenizer=tokenizer)
    target = convert_qwen2(source, folder / f"tiny-qwen2-{quant.upper()}.gguf", quant.lower())
    mark_standin(folder, "gguf")
    return target


def convert_qwen2(source: Path, target: Path, quant: str) -> Path:
    """Convert a Hugging Face ``Qwen2ForCausalLM`` folder to one GGUF file in ``quant`` (f32, f16, q8_0)."""
    import gguf

    config = json.loads((source / "config.json").read_text(encoding="utf-8"))
    file_type = {
        "f32": gguf.LlamaFileType.ALL_F32,
        "f16": gguf.LlamaFileType.MOSTLY_F16,
        "q8_0": gguf.LlamaFileType.MOSTLY_Q8_0,
    }[quant]
    tensors = _tensors(source)
    writer = gguf.GGUFWriter(str(target), gguf.MODEL_ARCH_NAMES[gguf.MODEL_ARCH.QWEN2])
    metadata = gguf.Metadata.load(None, source, source.name, sum(t.size for t in tensors.values()))
    metadata.set_gguf_meta_model(writer)
    writer.add_block_count(config["num_hidden_layers"])
    writer.add_context_length(config["max_position_embeddings"])
    writer.add_embedding_length(config["hidden_size"])
    writer.add_feed_forward_length(config["intermediate_size"])
    writer.add_head_count(config["num_attention_heads"])
    writer.add_head_count_kv(config["num_key_value_heads"])
    writer.add_rope_freq_base(config["rope_theta"])
    writer.add_layer_norm_rms_eps(config["rms_norm_eps"])
    writer.add_file_type(file_type)
    _add_vocab(writer, source, config)
    names = gguf.get_tensor_name_map(gguf.MODEL_ARCH.QWEN2, config["num_hidden_layers"])
    for hf_name, data in tensors.items():
        name = names.get_name(hf_name, try_suffixes=(".weight", ".bias"))
        if name is None:
            raise ValueError(f"{source}: tensor {hf_name} has no GGUF name")
        _add_tensor(writer, name, data, quant)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return target


def _tensors(source: Path) -> dict[str, np.ndarray]:
    """The folder's weights as float32 arrays (bf16 has no numpy type: torch widens it)."""
    from safetensors.torch import load_file

    return {name: tensor.float().numpy() for name, tensor in load_file(str(source / "model.safetensors")).items()}


def _add_tensor(writer: Any, name: str, data: np.ndarray, quant: str) -> None:
    """As the converter stores a tensor: norms, biases and other vectors in F32, matrices in ``quant``
    (F16 where a row does not fill Q8_0's blocks)."""
    import gguf
    import numpy as np

    if data.ndim <= 1 or name.endswith("_norm.weight") or quant == "f32":
        writer.add_tensor(name, data.astype(np.float32))
        return
    if quant == "q8_0":
        try:
            packed = gguf.quants.quantize(data, gguf.GGMLQuantizationType.Q8_0)
        except gguf.QuantError:
            pass
        else:
            writer.add_tensor(name, packed, raw_shape=packed.shape, raw_dtype=gguf.GGMLQuantizationType.Q8_0)
            return
    writer.add_tensor(name, data.astype(np.float16))


def _add_vocab(writer: Any, source: Path, config: dict[str, Any]) -> None:
    """``_set_vocab_gpt2``: the vocabulary as ``get_vocab_base`` lists it, then merges and special ids."""
    import gguf
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(source))
    vocab: dict[str, int] = tokenizer.get_vocab()
    size = config.get("vocab_size", len(vocab))
    by_id = {index: token for token, index in vocab.items()}
    added = tokenizer.get_added_vocab()
    decoder = tokenizer.added_tokens_decoder
    tokens: list[str] = []
    types: list[int] = []
    for index in range(size):
        token = by_id.get(index)
        if token is None:
            tokens.append(f"[PAD{index}]")
            types.append(gguf.TokenType.UNUSED)
            continue
        if token in added:
            if not decoder[index].normalized:
                token = str(tokenizer.decode(tokenizer.encode(token, add_special_tokens=False)))
            types.append(gguf.TokenType.CONTROL if decoder[index].special else gguf.TokenType.USER_DEFINED)
        else:
            types.append(gguf.TokenType.NORMAL)
        tokens.append(token)
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre(_pre_tokenizer(source, tokenizer))
    writer.add_token_list(tokens)
    writer.add_token_types(types)
    gguf.SpecialVocab(source, load_merges=True).add_to_gguf(writer)


def _pre_tokenizer(source: Path, tokenizer: Any) -> str:
    """llama.cpp's name for the split the loaded tokenizer applies before BPE. The converter tells it by
    hashing a test string's ids; a stand-in has one of two known splits, read from the tokenizer transformers
    builds (which for a ``qwen2`` model is Qwen2's own, whatever ``tokenizer.json`` says)."""
    pre = json.loads(tokenizer.backend_tokenizer.to_str()).get("pre_tokenizer") or {}
    steps = pre.get("pretokenizers", [pre])
    splits = [step.get("pattern", {}).get("Regex") for step in steps if step.get("type") == "Split"]
    if splits == [QWEN2_SPLIT]:
        return "qwen2"
    if not splits and any(step.get("type") == "ByteLevel" and step.get("use_regex", True) for step in steps):
        return "gpt-2"
    raise ValueError(f"{source}: a pre-tokenizer this converter does not know ({pre.get('type')})")
