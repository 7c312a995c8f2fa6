"""Stand-ins of ClueAI's T5 checkpoints (ChatYuan, PromptCLUE): a SentencePiece vocabulary, a T5 config,
and weights laid out as the published files."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from zhbench.engines.standins.common import mark_standin, save_weights, train_sentencepiece, write_json

if TYPE_CHECKING:
    import torch

#: ``tokenizer_config.json`` as each real checkpoint ships it
TOKENIZER_CONFIGS: dict[str, dict[str, Any]] = {
    "chatyuan": {
        "eos_token": "</s>",
        "unk_token": "<unk>",
        "pad_token": "<pad>",
        "extra_ids": 0,
        "additional_special_tokens": None,
        "model_max_length": 768,
        "tokenizer_class": "T5Tokenizer",
    },
    "promptclue": {
        "eos_token": "</s>",
        "unk_token": "<unk>",
        "pad_token": "<pad>",
        "extra_ids": 0,
        "additional_special_tokens": None,
        "model_max_length": 512,
        "name_or_path": "t5-base",
        "tokenizer_class": "T5Tokenizer",
    },
}


def write_chatyuan_standin(folder: Path, weights_format: str) -> Path:
    return write_clue_t5_standin("chatyuan", folder, weights_format)


def write_promptclue_standin(folder: Path, weights_format: str) -> Path:
    return write_clue_t5_standin("promptclue", folder, weights_format)


def write_clue_t5_standin(family: str, folder: Path, weights_format: str) -> Path:
    """A tiny T5 (2+2 layers of width 32) with a 24000-piece SentencePiece vocabulary."""
    from transformers import T5Tokenizer

    folder.mkdir(parents=True, exist_ok=True)
    train_sentencepiece(folder)
    write_json(folder / "tokenizer_config.json", TOKENIZER_CONFIGS[family])
    vocab_size = len(T5Tokenizer.from_pretrained(str(folder)))
    config = {
        "architectures": ["T5ForConditionalGeneration"],
        "model_type": "t5",
        "d_model": 32,
        "d_ff": 64,
        "d_kv": 8,
        "num_heads": 4,
        "num_layers": 2,
        "num_decoder_layers": 2,
        "feed_forward_proj": "gated-gelu",
        "dense_act_fn": "gelu_new",
        "is_gated_act": True,
        "tie_word_embeddings": False,
        "vocab_size": vocab_size,
        "decoder_start_token_id": 0,
        "pad_token_id": 0,
        "eos_token_id": 1,
        "relative_attention_num_buckets": 32,
        "relative_attention_max_distance": 128,
        "layer_norm_epsilon": 1e-06,
        "dropout_rate": 0.1,
        "initializer_factor": 1.0,
    }
    write_json(folder / "config.json", config)
    # A small initializer keeps random logits flat; the default one makes every reply collapse onto <pad>.
    save_weights(random_clue_t5_state({**config, "initializer_factor": 0.05}), folder, weights_format)
    mark_standin(folder, family)
    return folder


def random_clue_t5_state(config: dict[str, Any]) -> dict[str, torch.Tensor]:
    """Random weights for a T5 ``config`` laid out as ClueAI's checkpoints: the embedding shared by both
    stacks (saved once), and an ``lm_head`` of its own (a T5 built by transformers 5 ties it to the embedding)."""
    import torch
    from transformers import T5Config, T5ForConditionalGeneration

    torch.manual_seed(0)
    state = dict(T5ForConditionalGeneration(T5Config(**config)).state_dict())
    state["lm_head.weight"] = torch.randn_like(state["lm_head.weight"]) * config.get("initializer_factor", 1.0)
    return state
