"""The lean Llama-layout step (Llama, Qwen2, Qwen3, Mistral) gives bitwise the logits of the model's own
forward, within a reply, past a cache buffer's first size, and across turns; models it does not reproduce
keep the forward."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from transformers import AutoConfig, AutoModelForCausalLM

from tests.engines.local.steps.causal_logits import PROMPT, assert_same, forward_logits, greedy, one_by_one
from zhbench.engines.local.decoding import CausalDecoding
from zhbench.engines.local.layout import lay_out_for_cpu
from zhbench.engines.local.steps.kv_buffer import FIRST_CAPACITY
from zhbench.engines.local.steps.llama import LlamaStep

SMALL = {
    "hidden_size": 64,
    "intermediate_size": 96,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "vocab_size": 128,
    "max_position_embeddings": 256,
}
#: each architecture's own twists: biases, a per-head norm (Qwen3), RoPE scaling (Llama 3.1), no GQA
ARCHITECTURES = {
    "qwen2": {"model_type": "qwen2", "tie_word_embeddings": True},
    "qwen3": {"model_type": "qwen3", "head_dim": 32},
    "llama3-rope": {
        "model_type": "llama",
        "rope_scaling": {
            "rope_type": "llama3",
            "factor": 8.0,
            "low_freq_factor": 1.0,
            "high_freq_factor": 4.0,
            "original_max_position_embeddings": 64,
        },
    },
    "llama-biases-no-gqa": {"model_type": "llama", "attention_bias": True, "mlp_bias": True, "num_key_value_heads": 4},
    "mistral": {"model_type": "mistral", "sliding_window": None},
}


def tiny(kind: str, dtype: torch.dtype = torch.float32, **changes: Any) -> Any:
    settings = SMALL | ARCHITECTURES[kind] | changes
    config = AutoConfig.for_model(**settings)
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(config, attn_implementation="sdpa", dtype=dtype).eval()
    with torch.no_grad():  # biases and norms start at zero and one: give them values that show a mistake
        for name, parameter in model.named_parameters():
            if name.endswith(("bias", "norm.weight", "layernorm.weight")):
                parameter.normal_(1.0 if "norm" in name else 0.0, 0.1)
    return model


@pytest.mark.slow
@pytest.mark.parametrize("kind", list(ARCHITECTURES))
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_each_architecture_decodes_bitwise_as_its_forward(kind, dtype):
    model = tiny(kind, dtype)
    decoding = CausalDecoding(model, PROMPT, model.config.max_position_embeddings)
    assert isinstance(decoding._step, LlamaStep)  # the lean step runs, not the forward
    steps = FIRST_CAPACITY + 10  # past the key/value buffer's first doubling
    ours, tokens = greedy(decoding, steps)
    assert_same(ours, forward_logits(model, [PROMPT, *one_by_one(tokens)]))


@pytest.mark.parametrize("kind", list(ARCHITECTURES))
def test_weights_relaid_for_the_cpu_decode_bitwise_as_the_forward_on_them(kind):
    """zhbench loads float32 models on the CPU with their widening projections column-major
    (``engines/local/layout.py``); the step and the forward then read the same re-laid tensors."""
    model = tiny(kind)
    assert lay_out_for_cpu(model, "float32") > 0
    decoding = CausalDecoding(model, PROMPT, model.config.max_position_embeddings)
    ours, tokens = greedy(decoding, 12)
    assert_same(ours, forward_logits(model, [PROMPT, *one_by_one(tokens)]))


def test_a_turn_that_reuses_the_cache_decodes_as_a_fresh_forward():
    model = tiny("qwen2")
    first = CausalDecoding(model, PROMPT, model.config.max_position_embeddings)
    _, reply = greedy(first, 8)
    message = [17, 42, 8]
    second = CausalDecoding(model, [*PROMPT, *reply, *message], model.config.max_position_embeddings, reuse=first)
    assert second.fed == len(message)
    ours, tokens = greedy(second, 12)
    theirs = forward_logits(model, [PROMPT, *one_by_one(reply), message, *one_by_one(tokens)])
    assert_same(ours, theirs[len(reply) + 1 :])


@pytest.mark.parametrize(
    ("kind", "changes"),
    [
        ("mistral", {"sliding_window": 16}),  # every layer slides: attention needs a mask
        ("qwen2", {"use_sliding_window": True, "sliding_window": 16, "max_window_layers": 1}),
    ],
)
def test_sliding_window_models_keep_the_forward(kind, changes):
    model = tiny(kind, **changes)
    assert LlamaStep.for_model(model) is None
    decoding = CausalDecoding(model, PROMPT, model.config.max_position_embeddings)
    ours, tokens = greedy(decoding, 20)  # past the window
    assert_same(ours, forward_logits(model, [PROMPT, *one_by_one(tokens)]))


def test_eager_attention_keeps_the_forward():
    model = tiny("qwen2")
    model.set_attn_implementation("eager")
    assert LlamaStep.for_model(model) is None
