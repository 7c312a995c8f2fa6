"""One decoding step of a T5-style decoder, without the model forward's per-step Python.

At batch 1 a decoding step is a chain of matrix-vector products, and on a CPU the model's own forward
spends about a third of a PromptCLUE-base step (9 of 26 ms) between them: module calls, cache objects,
mask builders and output records in every layer. ``DecoderStep`` runs the same tensor operations in the
same order on the model's own weights, so its logits are bitwise the forward's. It follows
transformers' ``models/t5/modeling_t5.py`` (``T5Stack``, ``T5Block``, ``T5Attention`` with the ``sdpa``
attention of ``integrations/sdpa_attention.py``); EVA2.0's model (``engines/families/eva2/model.py``) shares
T5's module names and describes its decoder itself. ``tests/engines/local/steps/test_seq2seq_step.py``
compares the two, logit for logit, for every family.

Keys and values of the decoder's own tokens go into buffers that grow in place (``engines/local/steps/kv_buffer.py``)
instead of being concatenated anew at every step; the cross-attention keys and values are computed once
per reply.

This module imports torch at its top: import it only where a model is loaded.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

import torch
from torch.nn import functional

from zhbench.engines.local.steps.kv_buffer import LayerBuffers


@dataclass(frozen=True)
class DecoderLayerWeights:
    """One decoder block: self-attention, cross-attention, feed-forward, each after its RMS norm."""

    self_norm: torch.Tensor
    q: torch.Tensor
    k: torch.Tensor
    v: torch.Tensor
    o: torch.Tensor
    cross_norm: torch.Tensor
    cross_q: torch.Tensor
    cross_k: torch.Tensor
    cross_v: torch.Tensor
    cross_o: torch.Tensor
    ff_norm: torch.Tensor
    #: ``wi_0`` of a gated feed-forward ``wo(act(wi_0 x) * wi_1 x)``, or ``wi`` of ``wo(act(wi x))``
    wi: torch.Tensor
    wi_gate: torch.Tensor | None
    wo: torch.Tensor


@dataclass(frozen=True)
class DecoderWeights:
    """A T5-style decoder as weights and the few things in which its families differ."""

    embed: torch.Tensor
    layers: list[DecoderLayerWeights]
    final_norm: torch.Tensor
    lm_head: torch.Tensor
    heads: int
    head_size: int
    norm_eps: float
    #: factor on ``q·k`` (T5: 1, its scale is folded into the weights)
    attention_scale: float
    #: factor on the decoder's output before ``lm_head`` (T5 with tied embeddings: ``d_model ** -0.5``)
    output_scale: float | None
    activation: Callable[[torch.Tensor], torch.Tensor]
    #: the relative position bias of one query at ``position`` over keys ``0…position``: [1, heads, 1, position+1]
    position_bias: Callable[[int], torch.Tensor]


def t5_decoder_weights(model: Any) -> DecoderWeights | None:
    """The decoder of a transformers T5 model; None where ``DecoderStep`` does not reproduce its forward
    (attention other than ``sdpa``; float16, which clamps infinities in every block and keeps ``wo`` in
    float32). A model of another kind with T5's module names describes its own (EVA2.0 does)."""
    from transformers import T5ForConditionalGeneration

    if not isinstance(model, T5ForConditionalGeneration):
        return None
    decoder: Any = model.decoder  # reached by T5's module names, which torch types loosely
    first = decoder.block[0].layer[0].SelfAttention
    if (
        model.config._attn_implementation != "sdpa"
        or model.dtype == torch.float16
        or any(block.layer[-1].DenseReluDense.wo.weight.dtype != model.dtype for block in decoder.block)
    ):
        return None
    output_scale = model.model_dim**-0.5 if model.config.scale_decoder_outputs else None

    def position_bias(position: int) -> torch.Tensor:
        return cast("torch.Tensor", first.compute_bias(1, position + 1, past_seen_tokens=position))

    return decoder_weights(
        model,
        norm_eps=decoder.final_layer_norm.variance_epsilon,
        attention_scale=first.scaling,
        output_scale=output_scale,
        activation=decoder.block[0].layer[-1].DenseReluDense.act,
        position_bias=position_bias,
    )


def decoder_weights(
    model: Any,
    *,
    norm_eps: float,
    attention_scale: float,
    output_scale: float | None,
    activation: Callable[[torch.Tensor], torch.Tensor],
    position_bias: Callable[[int], torch.Tensor],
) -> DecoderWeights:
    """The weights of a decoder laid out with T5's module names (``decoder.block[i].layer[...]``)."""
    decoder = model.decoder
    return DecoderWeights(
        embed=decoder.embed_tokens.weight,
        layers=[_layer_weights(block) for block in decoder.block],
        final_norm=decoder.final_layer_norm.weight,
        lm_head=model.lm_head.weight,
        heads=model.config.num_heads,
        head_size=model.config.d_kv,
        norm_eps=norm_eps,
        attention_scale=attention_scale,
        output_scale=output_scale,
        activation=activation,
        position_bias=position_bias,
    )


def _layer_weights(block: Any) -> DecoderLayerWeights:
    own, cross, feed_forward = block.layer[0], block.layer[1], block.layer[-1]
    dense = feed_forward.DenseReluDense
    gated = hasattr(dense, "wi_0")
    return DecoderLayerWeights(
        self_norm=own.layer_norm.weight,
        q=own.SelfAttention.q.weight,
        k=own.SelfAttention.k.weight,
        v=own.SelfAttention.v.weight,
        o=own.SelfAttention.o.weight,
        cross_norm=cross.layer_norm.weight,
        cross_q=cross.EncDecAttention.q.weight,
        cross_k=cross.EncDecAttention.k.weight,
        cross_v=cross.EncDecAttention.v.weight,
        cross_o=cross.EncDecAttention.o.weight,
        ff_norm=feed_forward.layer_norm.weight,
        wi=dense.wi_0.weight if gated else dense.wi.weight,
        wi_gate=dense.wi_1.weight if gated else None,
        wo=dense.wo.weight,
    )


class DecoderStep:
    """Decodes one token at a time over an encoded input, as the model's forward with a key/value cache."""

    def __init__(self, weights: DecoderWeights, encoded: torch.Tensor) -> None:
        self._weights = weights
        self._position = 0
        with torch.inference_mode():
            self._cross = [
                (self._encoder_heads(encoded, layer.cross_k), self._encoder_heads(encoded, layer.cross_v))
                for layer in weights.layers
            ]
            self._cross_mask = encoded.new_zeros((1, weights.heads, 1, encoded.shape[1]))
            empty = encoded.new_empty((encoded.shape[0], weights.heads, 0, weights.head_size))
        count = len(weights.layers)
        self._keys, self._values = [empty] * count, [empty] * count
        self._buffers = LayerBuffers(count)

    def _encoder_heads(self, encoded: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        batch, length, _ = encoded.shape
        states = functional.linear(encoded, weight).view(batch, length, self._weights.heads, self._weights.head_size)
        return states.transpose(1, 2).contiguous()

    def _norm(self, weight: torch.Tensor, hidden: torch.Tensor) -> torch.Tensor:
        variance = hidden.to(torch.float32).pow(2).mean(-1, keepdim=True)
        return weight * (hidden * torch.rsqrt(variance + self._weights.norm_eps)).to(weight.dtype)

    def _heads(self, states: torch.Tensor) -> torch.Tensor:
        return states.view(states.shape[0], 1, self._weights.heads, self._weights.head_size).transpose(1, 2)

    def reorder(self, beams: torch.Tensor) -> None:
        """Keep the rows ``beams`` of the decoder's keys and values (the beams that go on), in that order."""
        with torch.inference_mode():
            for index, (keys, values) in enumerate(zip(self._keys, self._values, strict=True)):
                self._keys[index], self._values[index] = self._buffers.reordered(index, keys, values, beams)

    def run(self, token: torch.Tensor) -> torch.Tensor:
        """Feed ``token`` ([batch, 1] ids) at the next position; the logits after it, [batch, vocab]."""
        weights = self._weights
        scale = weights.attention_scale
        with torch.inference_mode():
            hidden = functional.embedding(token, weights.embed)
            bias = weights.position_bias(self._position).contiguous()
            for index, (layer, (cross_keys, cross_values)) in enumerate(zip(weights.layers, self._cross, strict=True)):
                normed = self._norm(layer.self_norm, hidden)
                query = self._heads(functional.linear(normed, layer.q))
                keys, values = self._buffers.extended(
                    index,
                    self._keys[index],
                    self._values[index],
                    self._heads(functional.linear(normed, layer.k)),
                    self._heads(functional.linear(normed, layer.v)),
                )
                self._keys[index], self._values[index] = keys, values
                attended = functional.scaled_dot_product_attention(query, keys, values, attn_mask=bias, scale=scale)
                hidden = hidden + functional.linear(attended.transpose(1, 2).reshape(hidden.shape), layer.o)
                normed = self._norm(layer.cross_norm, hidden)
                query = self._heads(functional.linear(normed, layer.cross_q))
                attended = functional.scaled_dot_product_attention(
                    query, cross_keys, cross_values, attn_mask=self._cross_mask, scale=scale
                )
                hidden = hidden + functional.linear(attended.transpose(1, 2).reshape(hidden.shape), layer.cross_o)
                normed = self._norm(layer.ff_norm, hidden)
                inner = weights.activation(functional.linear(normed, layer.wi))
                if layer.wi_gate is not None:
                    inner = inner * functional.linear(normed, layer.wi_gate)
                hidden = hidden + functional.linear(inner, layer.wo)
            hidden = self._norm(weights.final_norm, hidden)
            if weights.output_scale is not None:
                hidden = hidden * weights.output_scale
            logits = functional.linear(hidden, weights.lm_head)
        self._position += 1
        return logits[:, -1]


class ForwardStep:
    """The model's own forward with transformers' key/value cache, where ``DecoderStep`` does not apply."""

    def __init__(self, model: Any, encoded: torch.Tensor) -> None:
        from transformers.modeling_outputs import BaseModelOutput

        self._model = model
        self._encoded = BaseModelOutput(last_hidden_state=encoded)
        self._mask = torch.ones(encoded.shape[:2], dtype=torch.long, device=encoded.device)
        self._cache: Any = None

    def reorder(self, beams: torch.Tensor) -> None:
        self._cache.reorder_cache(beams)

    def run(self, token: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            output = self._model(
                encoder_outputs=self._encoded,
                attention_mask=self._mask,
                decoder_input_ids=token,
                cache=self._cache,
                use_cache=True,
            )
        self._cache = output.cache
        return cast("torch.Tensor", output.logits[:, -1])


def decoder_step(model: Any, encoded: torch.Tensor, weights: DecoderWeights | None) -> DecoderStep | ForwardStep:
    """How to decode over ``encoded`` ([batch, length, width], one row per beam): the lean step over the
    decoder ``weights`` where they are given (the step reproduces the model's forward), else the forward."""
    return ForwardStep(model, encoded) if weights is None else DecoderStep(weights, encoded)
