"""One decoding step of GPT-2, without the model forward's per-step Python.

At batch 1 on a CPU, transformers' GPT-2 forward spends about a sixth of a DialoGPT-small step (3 of
23 ms) between its matrix products: module calls, mask building, output records. ``Gpt2Step`` runs the
same tensor operations in the same order on the model's own weights and key/value cache, so its logits
are bitwise the forward's. It follows transformers' ``models/gpt2/modeling_gpt2.py`` (``GPT2Model``,
``GPT2Block``, ``GPT2Attention`` with the ``sdpa`` attention, ``GPT2MLP``) and ``pytorch_utils.Conv1D``;
``tests/engines/local/steps/test_gpt2_step.py`` compares the two for both GPT-2 families.

Prompts (several tokens at once) still go through the forward, which fills the same ``DynamicCache``
this step extends (in place, ``engines/local/steps/kv_buffer.py``), so reusing the cache across turns
(``CausalDecoding``) works on both alike.

This module imports torch at its top: import it only where a model is loaded.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.nn import functional

from zhbench.engines.local.steps.kv_buffer import LayerBuffers


@dataclass(frozen=True)
class Gpt2BlockWeights:
    """One block: attention after ``ln_1``, the MLP after ``ln_2``; ``Conv1D`` weights are [in, out]."""

    ln_1: nn.LayerNorm
    attention: torch.Tensor
    attention_bias: torch.Tensor
    projection: torch.Tensor
    projection_bias: torch.Tensor
    ln_2: nn.LayerNorm
    up: torch.Tensor
    up_bias: torch.Tensor
    down: torch.Tensor
    down_bias: torch.Tensor
    activation: nn.Module
    scaling: float


class Gpt2Step:
    """Feeds one token after what a ``DynamicCache`` holds, as ``GPT2LMHeadModel``'s forward does."""

    def __init__(self, model: Any) -> None:
        transformer = model.transformer
        self._tokens = transformer.wte.weight
        self._positions = transformer.wpe.weight
        self._final_norm: nn.LayerNorm = transformer.ln_f
        self._head = model.lm_head.weight
        self._width = model.config.n_embd
        self._head_size = self._width // model.config.n_head
        self._blocks = [
            Gpt2BlockWeights(
                ln_1=block.ln_1,
                attention=block.attn.c_attn.weight,
                attention_bias=block.attn.c_attn.bias,
                projection=block.attn.c_proj.weight,
                projection_bias=block.attn.c_proj.bias,
                ln_2=block.ln_2,
                up=block.mlp.c_fc.weight,
                up_bias=block.mlp.c_fc.bias,
                down=block.mlp.c_proj.weight,
                down_bias=block.mlp.c_proj.bias,
                activation=block.mlp.act,
                scaling=block.attn.scaling,
            )
            for block in transformer.h
        ]
        self._buffers = LayerBuffers(len(self._blocks))

    @classmethod
    def for_model(cls, model: Any) -> Gpt2Step | None:
        """The step for a GPT-2 whose forward it reproduces: ``sdpa`` attention, no cross-attention."""
        from transformers import GPT2LMHeadModel

        config = model.config
        if not isinstance(model, GPT2LMHeadModel) or config._attn_implementation != "sdpa":
            return None
        if config.add_cross_attention:
            return None
        return cls(model)

    @staticmethod
    def _norm(layer: nn.LayerNorm, hidden: torch.Tensor) -> torch.Tensor:
        return functional.layer_norm(hidden, layer.normalized_shape, layer.weight, layer.bias, layer.eps)

    @staticmethod
    def _conv1d(hidden: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        return torch.addmm(bias, hidden.view(-1, hidden.size(-1)), weight).view(*hidden.shape[:-1], weight.shape[1])

    def _heads(self, states: torch.Tensor) -> torch.Tensor:
        return states.view(*states.shape[:-1], -1, self._head_size).transpose(1, 2)

    def run(self, token: torch.Tensor, cache: Any) -> torch.Tensor:
        """Feed ``token`` ([1, 1] ids) after the ``cache``'s tokens, extending it; the logits, [1, vocab]."""
        width = self._width
        with torch.inference_mode():
            position = torch.arange(1, device=token.device) + cache.get_seq_length()
            hidden = functional.embedding(token, self._tokens) + functional.embedding(position[None], self._positions)
            for index, (block, layer) in enumerate(zip(self._blocks, cache.layers, strict=True)):
                residual = hidden
                mixed = self._conv1d(self._norm(block.ln_1, hidden), block.attention, block.attention_bias)
                query, key, value = mixed.split(width, dim=2)
                self._buffers.extend_cached(index, layer, self._heads(key), self._heads(value))
                attended = functional.scaled_dot_product_attention(
                    self._heads(query), layer.keys, layer.values, attn_mask=None, scale=block.scaling
                )
                attended = attended.transpose(1, 2).contiguous()
                attended = attended.reshape(*attended.shape[:-2], -1).contiguous()
                hidden = self._conv1d(attended, block.projection, block.projection_bias) + residual
                residual = hidden
                inner = block.activation(self._conv1d(self._norm(block.ln_2, hidden), block.up, block.up_bias))
                hidden = residual + self._conv1d(inner, block.down, block.down_bias)
            logits = functional.linear(self._norm(self._final_norm, hidden), self._head)
        return logits[:, -1]
