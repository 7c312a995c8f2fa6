"""Stand-ins of the two GPT-2 seed families, in their published file layouts."""

from __future__ import annotations

from pathlib import Path

from zhbench.engines.local.checkpoints import read_json
from zhbench.engines.standins.common import (
    bert_chinese_vocab,
    mark_standin,
    random_gpt2_state,
    save_weights,
    train_byte_level_bpe,
    write_json,
)


def write_dialogbot_standin(folder: Path, weights_format: str) -> Path:
    """gpt2-dialogbot-base-chinese: a BERT-Chinese ``vocab.txt`` and a GPT-2 config of 300 positions."""
    folder.mkdir(parents=True, exist_ok=True)
    vocab = bert_chinese_vocab()
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    specials = {
        "cls_token": "[CLS]",
        "mask_token": "[MASK]",
        "pad_token": "[PAD]",
        "sep_token": "[SEP]",
        "unk_token": "[UNK]",
    }
    write_json(folder / "special_tokens_map.json", specials)
    write_json(
        folder / "tokenizer_config.json",
        {
            **specials,
            "do_basic_tokenize": True,
            "do_lower_case": True,
            "tokenize_chinese_chars": True,
            "tokenizer_class": "BertTokenizer",
            "strip_accents": None,
            "never_split": None,
        },
    )
    # The real config's bos/eos ids (50256) lie outside its vocabulary; the stand-in keeps that trap.
    config = {
        "architectures": ["GPT2LMHeadModel"],
        "model_type": "gpt2",
        "activation_function": "gelu_new",
        "n_layer": 2,
        "n_head": 2,
        "n_embd": 32,
        "n_positions": 300,
        "n_ctx": 300,
        "vocab_size": len(vocab),
        "bos_token_id": 50256,
        "eos_token_id": 50256,
        "layer_norm_epsilon": 1e-05,
        "initializer_range": 0.02,
    }
    write_json(folder / "config.json", config)
    save_weights(random_gpt2_state(config), folder, weights_format)
    mark_standin(folder, "gpt2-dialogbot")
    return folder


def write_dialogpt_standin(folder: Path, weights_format: str) -> Path:
    """chat-DialoGPT-small-zh: GPT-2's byte-level BPE files (its end token last) and a 1024-position GPT-2."""
    folder.mkdir(parents=True, exist_ok=True)
    train_byte_level_bpe(folder)
    end = "<|endoftext|>"
    vocab_size = len(read_json(folder / "vocab.json"))
    eos_id = vocab_size - 1
    write_json(folder / "special_tokens_map.json", {"bos_token": end, "eos_token": end, "unk_token": end})
    write_json(
        folder / "tokenizer_config.json",
        {
            "unk_token": end,
            "bos_token": end,
            "eos_token": end,
            "add_prefix_space": False,
            "model_max_length": 1024,
            "name_or_path": "microsoft/DialoGPT-small",
            "errors": "replace",
            "tokenizer_class": "GPT2Tokenizer",
        },
    )
    config = {
        "architectures": ["GPT2LMHeadModel"],
        "model_type": "gpt2",
        "activation_function": "gelu_new",
        "n_layer": 2,
        "n_head": 2,
        "n_embd": 32,
        "n_positions": 1024,
        "n_ctx": 1024,
        "vocab_size": vocab_size,
        "bos_token_id": eos_id,
        "eos_token_id": eos_id,
        "layer_norm_epsilon": 1e-05,
        "initializer_range": 0.02,
    }
    write_json(folder / "config.json", config)
    save_weights(random_gpt2_state(config), folder, weights_format)
    mark_standin(folder, "dialogpt-zh")
    return folder
