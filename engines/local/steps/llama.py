"""One decoding step of a Llama-layout model (Llama, Qwen2, Qwen3, Mistral), without the forward's
per-step Python.

At batch 1 these forwards spend part of every token outside their matrix products: the decorators on the
model, every layer and every attention, the causal-mask builder, the cache's ``torch.cat`` of the whole
history per layer, the output records. ``LlamaStep`` runs the same tensor operations in the same order
on the model's own weights and key/value cache, so its logits are bitwise the forward's. It follows
transformers' ``models/llama/modeling_llama.py`` and its copies ``models/qwen2/modeling_qwen2.py``,
``models/qwen3/modeling_qwen3.py`` (``q_norm``/``k_norm`` on each head) and
``models/mistral/modeling_mistral.py``: ``*RMSNorm``, ``*Attention`` with ``integrations/sdpa_attention.py``
(one query token, no mask: ``enable_gqa`` where keys have fewer heads), ``*MLP``, ``*DecoderLayer``. The
rotary embedding is the model's own module and function, so every RoPE scaling the model has is kept.
``tests/engines/local/steps/test_llama_step.py`` compares the two for each architecture.

Prompts (several tokens at once) still go through the forward, which fills the same ``DynamicCache`` this
step extends in place (``engines/local/steps/kv_buffer.py``).

This module imports torch at its top: import it only where a model is loaded.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.nn import functional

from zhbench.engines.local.steps.kv_buffer import LayerBuffers

#: the causal LMs whose forward this step reproduces, by class name (transformers' own implementations)
ARCHITECTURES = frozenset({"LlamaForCausalLM", "Qwen2ForCausalLM", "Qwen3ForCausalLM", "MistralForCausalLM"})


@dataclass(frozen=True)
class Norm:
    """An ``*RMSNorm``: its weight and epsilon."""

    weight: torch.Tensor
    eps: float

    @classmethod
    def of(cls, module: Any) -> Norm:
        return cls(module.weight, module.variance_epsilon)

    def __call__(self, hidden: torch.Tensor) -> torch.Tensor:
        dtype = hidden.dtype
        hidden = hidden.to(torch.float32)
        variance = hidden.pow(2).mean(-1, keepdim=True)
        hidden = hidden * torch.rsqrt(variance + self.eps)
        return self.weight * hidden.to(dtype)


@dataclass(frozen=True)
class Projection:
    """An ``nn.Linear``'s weight and bias (None where the layer has none)."""

    weight: torch.Tensor
    bias: torch.Tensor | None

    @classmethod
    def of(cls, module: Any) -> Projection:
        return cls(module.weight, module.bias)

    def __call__(self, hidden: torch.Tensor) -> torch.Tensor:
        return functional.linear(hidden, self.weight, self.bias)


@dataclass(frozen=True)
class LayerWeights:
    """One decoder layer: attention after ``input_layernorm``, the MLP after ``post_attention_layernorm``."""

    input_norm: Norm
    query: Projection
    key: Projection
    value: Projection
    output: Projection
    #: Qwen3 normalises each head's queries and keys before the rotation
    query_norm: Norm | None
    key_norm: Norm | None
    post_norm: Norm
    gate: Projection
    up: Projection
    down: Projection
    activation: nn.Module
    scaling: float


class LlamaStep:
    """Feeds one token after what a ``DynamicCache`` holds, as the model's forward does."""

    def __init__(self, model: Any) -> None:
        inner = model.model
        self._tokens = inner.embed_tokens.weight
        self._rotary = inner.rotary_emb
        self._rotate: Callable[..., tuple[torch.Tensor, torch.Tensor]] = sys.modules[
            type(model).__module__
        ].apply_rotary_pos_emb
        self._final_norm = Norm.of(inner.norm)
        self._head = Projection.of(model.lm_head)
        attention = inner.layers[0].self_attn
        self._head_size: int = attention.head_dim
        #: what ``sdpa_attention_forward`` adds for one query token: ``enable_gqa`` where keys and values have
        #: fewer heads than queries (grouped-query attention); fixed by the model, so built once here
        self._attention_options = {"enable_gqa": True} if attention.num_key_value_groups > 1 else {}
        self._layers = [self._layer_weights(layer) for layer in inner.layers[: model.config.num_hidden_layers]]
        self._buffers = LayerBuffers(len(self._layers))

    @staticmethod
    def _layer_weights(layer: Any) -> LayerWeights:
        attention, mlp = layer.self_attn, layer.mlp
        query_norm, key_norm = getattr(attention, "q_norm", None), getattr(attention, "k_norm", None)
        return LayerWeights(
            input_norm=Norm.of(layer.input_layernorm),
            query=Projection.of(attention.q_proj),
            key=Projection.of(attention.k_proj),
            value=Projection.of(attention.v_proj),
            output=Projection.of(attention.o_proj),
            query_norm=Norm.of(query_norm) if query_norm is not None else None,
            key_norm=Norm.of(key_norm) if key_norm is not None else None,
            post_norm=Norm.of(layer.post_attention_layernorm),
            gate=Projection.of(mlp.gate_proj),
            up=Projection.of(mlp.up_proj),
            down=Projection.of(mlp.down_proj),
            activation=mlp.act_fn,
            scaling=attention.scaling,
        )

    @classmethod
    def for_model(cls, model: Any) -> LlamaStep | None:
        """The step for a model whose forward it reproduces: one of ``ARCHITECTURES`` with ``sdpa``
        attention and no sliding-window layer (those attend through a mask this step does not build)."""
        config = model.config
        if type(model).__name__ not in ARCHITECTURES or config._attn_implementation != "sdpa":
            return None
        if any(kind != "full_attention" for kind in getattr(config, "layer_types", None) or ["full_attention"]):
            return None
        if getattr(config, "sliding_window", None) is not None and type(model).__name__ == "MistralForCausalLM":
            return None  # Mistral's layers slide whenever the config sets a window
        attention = model.model.layers[0].self_attn
        if attention.num_key_value_groups > 1 and attention.head_dim > 256:
            return None  # sdpa_attention_forward packs such heads another way (``pack_gqa``)
        return cls(model)

    def _heads(self, states: torch.Tensor) -> torch.Tensor:
        """[1, 1, heads × size] as [1, 1, heads, size] (before a per-head norm and the transpose)."""
        return states.view(*states.shape[:-1], -1, self._head_size)

    def run(self, token: torch.Tensor, cache: Any) -> torch.Tensor:
        """Feed ``token`` ([1, 1] ids) after the ``cache``'s tokens, extending it; the logits, [1, vocab]."""
        with torch.inference_mode():
            position = (torch.arange(1, device=token.device) + cache.get_seq_length()).unsqueeze(0)
            hidden = functional.embedding(token, self._tokens)
            cos, sin = self._rotary(hidden, position)
            for index, (layer, held) in enumerate(zip(self._layers, cache.layers, strict=True)):
                residual = hidden
                normed = layer.input_norm(hidden)
                query, key = self._heads(layer.query(normed)), self._heads(layer.key(normed))
                if layer.query_norm is not None and layer.key_norm is not None:
                    query, key = layer.query_norm(query), layer.key_norm(key)
                query, key = self._rotate(query.transpose(1, 2), key.transpose(1, 2), cos, sin)
                value = self._heads(layer.value(normed)).transpose(1, 2)
                self._buffers.extend_cached(index, held, key, value)
                attended = functional.scaled_dot_product_attention(
                    query,
                    held.keys,
                    held.values,
                    attn_mask=None,
                    dropout_p=0.0,
                    scale=layer.scaling,
                    is_causal=False,
                    **self._attention_options,
                )
                attended = attended.transpose(1, 2).contiguous()
                attended = attended.reshape(*attended.shape[:-2], -1).contiguous()
                hidden = residual + layer.output(attended)
                residual = hidden
                normed = layer.post_norm(hidden)
                hidden = residual + layer.down(layer.activation(layer.gate(normed)) * layer.up(normed))
            logits = self._head(self._final_norm(hidden))
        return logits[:, -1]
