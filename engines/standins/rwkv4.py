"""Stand-ins of RWKV-4: a ``.pth`` checkpoint in the released key names and shapes, with a Pile-style
``20B_tokenizer.json`` beside it, or a 65536-id World model (whose vocabulary ships with the rwkv package)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from zhbench.engines.families.rwkv4.checkpoint import PILE_TOKENIZER, WORLD_VOCAB_SIZE
from zhbench.engines.standins.common import chinese_corpus, mark_standin

if TYPE_CHECKING:
    import torch


def write_rwkv4_standin(folder: Path, weights_format: str = "pth", *, vocabulary: str = "pile") -> Path:
    """A tiny RWKV-4 ``.pth`` with ``20B_tokenizer.json`` beside it (a small byte-level BPE in the real
    file's format), or with ``vocabulary="world"`` a 65536-id World model."""
    import torch

    if weights_format != "pth":
        raise ValueError(f"rwkv4 checkpoints are .pth files (torch.save); no {weights_format} stand-in")
    folder.mkdir(parents=True, exist_ok=True)
    if vocabulary == "world":
        vocab_size, name = WORLD_VOCAB_SIZE, "RWKV-4-World-tiny-standin.pth"
    elif vocabulary == "pile":
        vocab_size, name = train_pile_style_tokenizer(folder / PILE_TOKENIZER), "RWKV-4-Pile-tiny-standin.pth"
    else:
        raise ValueError(f"unknown vocabulary {vocabulary!r} (expected pile or world)")
    torch.save(random_rwkv4_state(vocab_size, n_embd=16 if vocabulary == "world" else 32), folder / name)
    mark_standin(folder, "rwkv4")
    return folder


def train_pile_style_tokenizer(path: Path, *, vocab_size: int = 2000) -> int:
    """A byte-level BPE saved as a ``tokenizers`` JSON like ``20B_tokenizer.json`` (NFC, ``<|endoftext|>`` 0,
    ``<|padding|>`` 1), trained so that ``\\n``, ``\\n\\n`` and ``，。：？！`` are single tokens; returns its size."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.normalizer = normalizers.NFC()
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    lines = chinese_corpus()
    chat_lines = [f"User: {a}\n\nBot: {b}：{a}！{b}？\n\n" for a, b in zip(lines[:300], lines[300:600], strict=True)]
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=["<|endoftext|>", "<|padding|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator([*lines, *chat_lines], trainer)
    tokenizer.save(str(path))
    return tokenizer.get_vocab_size()


def random_rwkv4_state(vocab_size: int, *, n_embd: int = 32, n_layer: int = 2) -> dict[str, torch.Tensor]:
    """Random RWKV-4 weights in the checkpoint's key names and shapes (bf16, as the released files)."""
    import torch

    generator = torch.Generator().manual_seed(0)

    def randn(*shape: int, scale: float = 0.1) -> torch.Tensor:
        return torch.randn(*shape, generator=generator) * scale

    c = n_embd
    state = {
        "emb.weight": randn(vocab_size, c),
        "blocks.0.ln0.weight": torch.ones(c),
        "blocks.0.ln0.bias": torch.zeros(c),
    }
    for layer in range(n_layer):
        block = f"blocks.{layer}."
        for norm in ("ln1", "ln2"):
            state[f"{block}{norm}.weight"], state[f"{block}{norm}.bias"] = torch.ones(c), torch.zeros(c)
        state[block + "att.time_decay"] = randn(c, scale=1.0)
        state[block + "att.time_first"] = randn(c, scale=1.0)
        for name in ("att.time_mix_k", "att.time_mix_v", "att.time_mix_r", "ffn.time_mix_k", "ffn.time_mix_r"):
            state[block + name] = torch.rand(1, 1, c, generator=generator)
        for name in ("key", "value", "receptance", "output"):
            state[f"{block}att.{name}.weight"] = randn(c, c, scale=c**-0.5)
        state[block + "ffn.key.weight"] = randn(4 * c, c, scale=c**-0.5)
        state[block + "ffn.receptance.weight"] = randn(c, c, scale=c**-0.5)
        state[block + "ffn.value.weight"] = randn(c, 4 * c, scale=(4 * c) ** -0.5)
    state["ln_out.weight"], state["ln_out.bias"] = torch.ones(c), torch.zeros(c)
    state["head.weight"] = randn(vocab_size, c, scale=0.5)
    return {name: tensor.to(torch.bfloat16) for name, tensor in state.items()}
