"""Stand-ins of the chat-template family: a tiny random-weight Qwen2 model in the published layout.

Laid out as Qwen2.5-0.5B-Instruct is: ``config.json`` (``Qwen2ForCausalLM``, embedding and head tied),
``generation_config.json`` with the card's sampling settings and both end ids, bf16 ``model.safetensors``,
and the tokenizer with its chat template in ``chat_template.jinja``. The tokenizer is a given folder's (the
tests use the real Qwen2 vocabulary from ``../shared/data/chat/qwen2-tokenizer/``), else a small byte-level
BPE trained here with Qwen's special tokens, so the demo and a clone without ``../shared`` work too.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

from zhbench.engines.families.chat_template.engine import TEMPLATE_FILE
from zhbench.engines.standins.common import chinese_corpus, mark_standin, save_weights, write_json

if TYPE_CHECKING:
    import torch

#: ChatML as Qwen2.5 writes it, without its default system message and tools: what a stand-in gets when no
#: template is named
CHATML = (
    "{%- for message in messages %}"
    "{{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>' + '\\n' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)
END_OF_TEXT, TURN_START, TURN_END = "<|endoftext|>", "<|im_start|>", "<|im_end|>"
#: Qwen3's reasoning tags: added tokens, but not special ones (decoding keeps them)
THINK_TAGS = ("<think>", "</think>")
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.json", "merges.txt", "special_tokens_map.json")


def write_chat_template_standin(
    folder: Path, weights_format: str = "safetensors", *, template: str | None = None, tokenizer: str | None = None
) -> Path:
    """A tiny Qwen2 (2 layers of width 32) with a chat template: ``template`` is a ``.jinja`` file (default:
    ChatML); ``tokenizer`` a folder whose tokenizer files are copied (default: a small one trained here)."""
    from transformers import AutoTokenizer

    folder.mkdir(parents=True, exist_ok=True)
    if tokenizer is None:
        train_qwen_style_tokenizer(folder)
    else:
        for name in TOKENIZER_FILES:
            if (Path(tokenizer) / name).is_file():
                shutil.copy(Path(tokenizer) / name, folder / name)
    (folder / TEMPLATE_FILE).write_text(
        Path(template).read_text(encoding="utf-8") if template else CHATML, encoding="utf-8"
    )
    loaded = AutoTokenizer.from_pretrained(str(folder))
    end_of_text, turn_end = (loaded.convert_tokens_to_ids(token) for token in (END_OF_TEXT, TURN_END))
    config = {
        "architectures": ["Qwen2ForCausalLM"],
        "model_type": "qwen2",
        "hidden_act": "silu",
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "max_position_embeddings": 4096,
        "max_window_layers": 2,
        "rms_norm_eps": 1e-06,
        "rope_theta": 1000000.0,
        "sliding_window": 4096,
        "use_sliding_window": False,
        "tie_word_embeddings": True,
        "torch_dtype": "bfloat16",
        "vocab_size": len(loaded),
        "bos_token_id": end_of_text,
        "eos_token_id": turn_end,
        "attention_dropout": 0.0,
        "initializer_range": 0.02,
    }
    write_json(folder / "config.json", config)
    # Qwen2.5-0.5B-Instruct's generation_config.json, with this vocabulary's ids
    write_json(
        folder / "generation_config.json",
        {
            "bos_token_id": end_of_text,
            "pad_token_id": end_of_text,
            "do_sample": True,
            "eos_token_id": [turn_end, end_of_text],
            "repetition_penalty": 1.1,
            "temperature": 0.7,
            "top_p": 0.8,
            "top_k": 20,
        },
    )
    save_weights(random_qwen2_state(config), folder, weights_format)
    mark_standin(folder, "chat-template")
    return folder


def random_qwen2_state(config: dict[str, Any]) -> dict[str, torch.Tensor]:
    """Random weights for a Qwen2 ``config`` in bf16, as the published files (a tied head saved once)."""
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(0)
    known = {k: v for k, v in config.items() if k not in ("architectures", "torch_dtype")}
    model = Qwen2ForCausalLM(Qwen2Config(**known))
    return {name: tensor.to(torch.bfloat16) for name, tensor in model.state_dict().items()}


def train_qwen_style_tokenizer(folder: Path, *, vocab_size: int = 3000) -> None:
    """A byte-level BPE with Qwen's special tokens (``<|endoftext|>``, ``<|im_start|>``, ``<|im_end|>``) and
    its ``<think>`` tags, saved with ``tokenizer_config.json`` as transformers writes it."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[END_OF_TEXT, TURN_START, TURN_END],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    backend.train_from_iterator(chinese_corpus(), trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend, eos_token=TURN_END, pad_token=END_OF_TEXT, unk_token=None, bos_token=None
    )
    tokenizer.add_tokens(list(THINK_TAGS))
    tokenizer.save_pretrained(str(folder))
