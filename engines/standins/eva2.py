"""Stand-ins of EVA2.0: its ``config.json`` keys, a 30000-line ``vocab.txt`` with the special tokens at the
real ids, and fp16 weights under upstream's converter key names."""

from __future__ import annotations

from pathlib import Path

from zhbench.engines.families.eva2.engine import EMBEDDING_ALIASES
from zhbench.engines.families.eva2.tokenizer import NEWLINE, REPLY_START, SEP, SPACE, UNK
from zhbench.engines.standins.common import mark_standin, save_weights, write_json


def write_eva2_standin(folder: Path, weights_format: str) -> Path:
    """A tiny EVA2.0 (2+2 layers of width 32) in the published layout."""
    write_random_checkpoint(folder, STANDIN_SIZES, weights_format)
    mark_standin(folder, "eva2")
    return folder


#: the tiny stand-in's shape, in the keys of EVA2.0-base's ``config.json``
STANDIN_SIZES = {"d_model": 32, "d_ff": 64, "d_kv": 8, "num_heads": 4, "num_layers": 2, "num_decoder_layers": 2}


def write_random_checkpoint(folder: Path, sizes: dict[str, int], weights_format: str = "bin") -> None:
    """A random-weight EVA checkpoint of the given sizes, in the published layout (config, vocab, fp16 weights)."""
    import torch

    from zhbench.engines.families.eva2.model import EvaForConditionalGeneration, eva_config

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.txt").write_text("\n".join(standin_vocabulary()) + "\n", encoding="utf-8")
    # EVA2.0-base's config.json, verbatim but for the sizes.
    config = {
        **sizes,
        "dropout_rate": 0.0,
        "init_method_std": 0.001,
        "initializer_factor": 1.0,
        "layer_norm_epsilon": 1e-06,
        "max_position_embeddings": 512,
        "use_cache": False,
        "attn_scale": True,
    }
    write_json(folder / "config.json", config)
    generator = torch.Generator().manual_seed(0)
    with torch.device("meta"):
        model = EvaForConditionalGeneration(eva_config(config))
    state: dict[str, torch.Tensor] = {}
    for name, parameter in model.named_parameters():
        if name.endswith("layer_norm.weight"):
            state[name] = torch.ones(parameter.shape, dtype=torch.float16)
        else:  # small weights keep the random logits flat, so sampling does not collapse on one token
            state[name] = (torch.randn(parameter.shape, generator=generator) * 0.05).half()
    for alias in EMBEDDING_ALIASES:
        state[alias] = state["shared.weight"].clone()
    save_weights(state, folder, weights_format)


def standin_vocabulary() -> list[str]:
    """30000 tokens: EVA's first 11 at their real ids, ASCII, Chinese punctuation, the CJK block,
    fillers, then the sentinels ``<s_0>`` … ``<s_189>`` at 29810 … 29999 as in the real file."""
    head = [UNK, "<s>", "</s>", NEWLINE, SEP, "<pad>", "<mask>", "<eod>", "", ",", SPACE]
    body = [chr(c) for c in range(0x21, 0x7F) if chr(c) != ","]
    body += list("。、《》【】「」…—·") + [chr(c) for c in range(0x4E00, 0xA000)]
    sentinels = [f"<s_{i}>" for i in range(190)]
    fillers = [f"<unused_{i}>" for i in range(30000 - len(head) - len(body) - len(sentinels))]
    vocabulary = head + body + fillers + sentinels
    assert vocabulary[29810] == REPLY_START and len(vocabulary) == 30000
    return vocabulary
