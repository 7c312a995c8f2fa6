"""EVA2.0's encoder-decoder, written for transformers 5 from the architecture of upstream's model code.

Follows thu-coai/EVA@a9c15c9 (branch huggingface) ``src/model/eva_modeling.py`` and
``configuration_eva.py``: a T5-v1.1-like encoder-decoder with RMS layer norm (no bias, no mean), a
relative position bias computed in the first block of each stack and shared by the others, a gated
feed-forward ``wo(gelu(wi_0 x) * wi_1 x)`` with the exact gelu, no biases anywhere, an untied
``lm_head`` without T5's output rescaling, and, where ``attn_scale`` is set, attention scores
``q·k`` divided by the square root of ``d_kv`` before the position bias is added.

Module and attribute names are the key names of upstream's converter (``src/convert_to_hf.py``), so
the published ``pytorch_model.bin`` loads unchanged. Decoding keeps keys and values in transformers'
``EncoderDecoderCache`` (upstream's cache was silently unused on newer transformers), and the model is
a ``GenerationMixin``, so ``generate()`` works on it (zhbench's replies use their own decoding loops).

This module imports torch and transformers at its top: import it only where a model is loaded.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any, cast

import torch
from torch import nn
from transformers import GenerationMixin, PreTrainedConfig, PreTrainedModel
from transformers.cache_utils import DynamicCache, DynamicLayer, EncoderDecoderCache
from transformers.modeling_outputs import BaseModelOutput, Seq2SeqLMOutput

from zhbench.engines.local.steps.seq2seq import DecoderWeights


class EvaConfig(PreTrainedConfig):
    """The keys of EVA's ``config.json`` (which has no ``model_type``) and ``EVAConfig``'s defaults."""

    model_type = "eva2"
    attribute_map = {  # noqa: RUF012 (transformers reads it as a class attribute)
        "hidden_size": "d_model",
        "num_attention_heads": "num_heads",
        "num_hidden_layers": "num_decoder_layers",  # the key/value cache is the decoder's
        "head_dim": "d_kv",
    }

    vocab_size: int = 30000
    d_model: int = 768
    d_kv: int = 64
    d_ff: int = 3072
    num_layers: int = 12
    num_decoder_layers: int | None = None
    num_heads: int = 12
    relative_attention_num_buckets: int = 32
    #: upstream passes no distance, so its bucket function's default applies
    relative_attention_max_distance: int = 128
    layer_norm_epsilon: float = 1e-6
    attn_scale: bool = False
    #: "none" is the exact gelu of the published code; "tanh" is T5 v1.1's ``gelu_new`` (which EVA's
    #: pre-release code used), kept so the architecture can be checked against transformers' T5
    gelu_approximation: str = "none"
    is_encoder_decoder: bool = True
    use_cache: bool = True
    pad_token_id: int | None = 5
    eos_token_id: int | None = 4
    bos_token_id: int | None = 29810
    decoder_start_token_id: int | None = 29810
    tie_word_embeddings: bool = False

    def __post_init__(self, **kwargs: Any) -> None:
        if self.num_decoder_layers is None:
            self.num_decoder_layers = self.num_layers
        if self.gelu_approximation not in ("none", "tanh"):
            raise ValueError(f"gelu_approximation must be 'none' or 'tanh', not {self.gelu_approximation!r}")
        finish: Callable[..., None] = super().__post_init__  # transformers leaves it unannotated
        finish(**kwargs)


#: ``config.json`` keys that shape the model (dropout and initialisation settings do not matter here)
SIZE_KEYS = ("vocab_size", "d_model", "d_kv", "d_ff", "num_layers", "num_decoder_layers", "num_heads")
TOKEN_KEYS = ("pad_token_id", "eos_token_id", "bos_token_id")


def eva_config(data: Mapping[str, Any]) -> EvaConfig:
    """The config of an EVA ``config.json`` (a ``ValueError`` naming a bad value).

    As upstream's ``EVAConfig``, keys left out take its defaults and the decoder starts with ``bos_token_id``.
    """
    known: dict[str, Any] = {}
    for key in (*SIZE_KEYS, "relative_attention_num_buckets", *TOKEN_KEYS):
        if key in data:
            value = data[key]
            if not isinstance(value, int) or isinstance(value, bool) or value < (0 if key in TOKEN_KEYS else 1):
                raise ValueError(
                    f"{key} must be a whole number{'' if key in TOKEN_KEYS else ' above 0'}, not {value!r}"
                )
            known[key] = value
    if "layer_norm_epsilon" in data:
        epsilon = data["layer_norm_epsilon"]
        if not isinstance(epsilon, (int, float)) or isinstance(epsilon, bool) or not 0 < epsilon < 1:
            raise ValueError(f"layer_norm_epsilon must be a small positive number, not {epsilon!r}")
        known["layer_norm_epsilon"] = float(epsilon)
    if "attn_scale" in data:
        if not isinstance(data["attn_scale"], bool):
            raise ValueError(f"attn_scale must be true or false, not {data['attn_scale']!r}")
        known["attn_scale"] = data["attn_scale"]
    config = EvaConfig(**known)
    config.decoder_start_token_id = config.bos_token_id
    return config


class EvaLayerNorm(nn.Module):
    """RMS norm without bias, computed in float32, as T5's."""

    def __init__(self, size: int, eps: float) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(size))
        self.eps = eps

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        variance = hidden.to(torch.float32).pow(2).mean(-1, keepdim=True)
        normed = hidden * torch.rsqrt(variance + self.eps)
        return self.weight * normed.to(self.weight.dtype)


def relative_position_buckets(
    relative_position: torch.Tensor, *, bidirectional: bool, num_buckets: int, max_distance: int
) -> torch.Tensor:
    """Mesh-TensorFlow's buckets for ``key_position - query_position``.

    Half the buckets (per direction, when bidirectional) hold exact small distances; the rest grow
    logarithmically up to ``max_distance``, beyond which all distances share the last bucket.
    """
    buckets = torch.zeros_like(relative_position)
    if bidirectional:
        num_buckets //= 2
        buckets += (relative_position > 0).long() * num_buckets
        distance = relative_position.abs()
    else:
        distance = (-relative_position).clamp(min=0)
    exact = num_buckets // 2
    logarithmic = (
        exact + (torch.log(distance.float() / exact) / math.log(max_distance / exact) * (num_buckets - exact)).long()
    )
    logarithmic = logarithmic.clamp(max=num_buckets - 1)
    return buckets + torch.where(distance < exact, distance, logarithmic)


class EvaAttention(nn.Module):
    """Multi-head attention without biases; scores are scaled by 1/sqrt(d_kv) only under ``attn_scale``."""

    def __init__(self, config: EvaConfig, *, is_decoder: bool, has_relative_bias: bool, layer_index: int) -> None:
        super().__init__()
        inner = config.num_heads * config.d_kv
        self.num_heads = config.num_heads
        self.head_size = config.d_kv
        self.is_decoder = is_decoder
        self.layer_index = layer_index
        self.scale = 1.0 / math.sqrt(config.d_kv) if config.attn_scale else 1.0
        self.num_buckets = config.relative_attention_num_buckets
        self.max_distance = config.relative_attention_max_distance
        self.q = nn.Linear(config.d_model, inner, bias=False)
        self.k = nn.Linear(config.d_model, inner, bias=False)
        self.v = nn.Linear(config.d_model, inner, bias=False)
        self.o = nn.Linear(inner, config.d_model, bias=False)
        if has_relative_bias:
            self.relative_attention_bias = nn.Embedding(config.relative_attention_num_buckets, config.num_heads)

    def _heads(self, states: torch.Tensor) -> torch.Tensor:
        batch, length, _ = states.shape
        return states.view(batch, length, self.num_heads, self.head_size).transpose(1, 2)

    def position_bias(self, query_start: int, query_length: int, key_length: int, device: torch.device) -> torch.Tensor:
        """The bias of queries at positions ``query_start…`` over keys ``0…key_length-1``: [1, heads, q, k]."""
        queries = torch.arange(query_start, query_start + query_length, device=device)[:, None]
        keys = torch.arange(key_length, device=device)[None, :]
        buckets = relative_position_buckets(
            keys - queries,
            bidirectional=not self.is_decoder,
            num_buckets=self.num_buckets,
            max_distance=self.max_distance,
        )
        return cast("torch.Tensor", self.relative_attention_bias(buckets).permute(2, 0, 1).unsqueeze(0))

    def forward(
        self,
        hidden: torch.Tensor,
        *,
        mask: torch.Tensor,
        position_bias: torch.Tensor | None,
        key_value_states: torch.Tensor | None = None,
        cache: EncoderDecoderCache | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Attend; returns the output and the position bias (computed here in the first block)."""
        query = self._heads(self.q(hidden))
        cross = key_value_states is not None
        past_length = 0
        if cross and cache is not None and cache.is_updated.get(self.layer_index):
            layer = cache.cross_attention_cache.layers[self.layer_index]
            assert isinstance(layer, DynamicLayer) and layer.keys is not None and layer.values is not None
            key, value = layer.keys, layer.values
        else:
            source = key_value_states if cross else hidden
            key, value = self._heads(self.k(source)), self._heads(self.v(source))
            if cache is not None:
                if cross:
                    key, value = cache.cross_attention_cache.update(key, value, self.layer_index)
                    cache.is_updated[self.layer_index] = True
                else:
                    past_length = cache.self_attention_cache.get_seq_length(self.layer_index)
                    key, value = cache.self_attention_cache.update(key, value, self.layer_index)
        if position_bias is None:
            if cross or not hasattr(self, "relative_attention_bias"):
                position_bias = query.new_zeros((1, self.num_heads, query.shape[2], key.shape[2]))
            else:
                position_bias = self.position_bias(past_length, query.shape[2], key.shape[2], query.device)
            position_bias = position_bias.to(query.dtype)
        # softmax(scale * q·k + mask + bias) v, as upstream's matmuls; one fused call (engines/seq2seq_step.py
        # decodes with the same call and must give the same logits)
        context = nn.functional.scaled_dot_product_attention(
            query, key, value, attn_mask=mask + position_bias, scale=self.scale
        )
        context = context.transpose(1, 2).reshape(hidden.shape[0], hidden.shape[1], -1)
        return self.o(context), position_bias


class EvaSelfAttentionLayer(nn.Module):
    def __init__(self, config: EvaConfig, *, is_decoder: bool, has_relative_bias: bool, layer_index: int) -> None:
        super().__init__()
        self.SelfAttention = EvaAttention(
            config, is_decoder=is_decoder, has_relative_bias=has_relative_bias, layer_index=layer_index
        )
        self.layer_norm = EvaLayerNorm(config.d_model, config.layer_norm_epsilon)

    def forward(
        self, hidden: torch.Tensor, mask: torch.Tensor, bias: torch.Tensor | None, cache: EncoderDecoderCache | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        output, bias = self.SelfAttention(self.layer_norm(hidden), mask=mask, position_bias=bias, cache=cache)
        return hidden + output, bias


class EvaCrossAttentionLayer(nn.Module):
    def __init__(self, config: EvaConfig, *, layer_index: int) -> None:
        super().__init__()
        self.EncDecAttention = EvaAttention(config, is_decoder=True, has_relative_bias=False, layer_index=layer_index)
        self.layer_norm = EvaLayerNorm(config.d_model, config.layer_norm_epsilon)

    def forward(
        self,
        hidden: torch.Tensor,
        encoded: torch.Tensor,
        mask: torch.Tensor,
        bias: torch.Tensor | None,
        cache: EncoderDecoderCache | None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        output, bias = self.EncDecAttention(
            self.layer_norm(hidden), mask=mask, position_bias=bias, key_value_states=encoded, cache=cache
        )
        return hidden + output, bias


class EvaGatedFeedForward(nn.Module):
    """``wo(gelu(wi_0 x) * wi_1 x)``; upstream keeps T5's module name ``DenseReluDense`` for it."""

    def __init__(self, config: EvaConfig) -> None:
        super().__init__()
        self.wi_0 = nn.Linear(config.d_model, config.d_ff, bias=False)
        self.wi_1 = nn.Linear(config.d_model, config.d_ff, bias=False)
        self.wo = nn.Linear(config.d_ff, config.d_model, bias=False)
        self.approximate = config.gelu_approximation

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        gate = nn.functional.gelu(self.wi_0(hidden), approximate=self.approximate)
        return cast("torch.Tensor", self.wo(gate * self.wi_1(hidden)))


class EvaFeedForwardLayer(nn.Module):
    def __init__(self, config: EvaConfig) -> None:
        super().__init__()
        self.DenseReluDense = EvaGatedFeedForward(config)
        self.layer_norm = EvaLayerNorm(config.d_model, config.layer_norm_epsilon)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return cast("torch.Tensor", hidden + self.DenseReluDense(self.layer_norm(hidden)))


class EvaBlock(nn.Module):
    """Self-attention, (cross-attention,) feed-forward: ``layer.0``, (``layer.1``,) ``layer.-1``."""

    def __init__(self, config: EvaConfig, *, is_decoder: bool, layer_index: int) -> None:
        super().__init__()
        first = layer_index == 0
        layers: list[nn.Module] = [
            EvaSelfAttentionLayer(config, is_decoder=is_decoder, has_relative_bias=first, layer_index=layer_index)
        ]
        if is_decoder:
            layers.append(EvaCrossAttentionLayer(config, layer_index=layer_index))
        layers.append(EvaFeedForwardLayer(config))
        self.layer = nn.ModuleList(layers)


class EvaStack(nn.Module):
    """The encoder or the decoder: embeddings (shared), blocks, final norm."""

    main_input_name = "input_ids"  # what generate() feeds the encoder

    def __init__(self, config: EvaConfig, embed_tokens: nn.Embedding, *, is_decoder: bool) -> None:
        super().__init__()
        self.is_decoder = is_decoder
        self.embed_tokens = embed_tokens
        count = (config.num_decoder_layers if is_decoder else None) or config.num_layers
        self.block = nn.ModuleList(EvaBlock(config, is_decoder=is_decoder, layer_index=i) for i in range(count))
        self.final_layer_norm = EvaLayerNorm(config.d_model, config.layer_norm_epsilon)

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        encoder_hidden_states: torch.Tensor | None = None,
        encoder_attention_mask: torch.Tensor | None = None,
        cache: EncoderDecoderCache | None = None,
        **kwargs: Any,
    ) -> BaseModelOutput:
        hidden = self.embed_tokens(input_ids)
        dtype = hidden.dtype
        batch, length = input_ids.shape
        past = cache.self_attention_cache.get_seq_length() if cache is not None else 0
        if attention_mask is None:
            attention_mask = torch.ones(batch, past + length, device=input_ids.device)
        mask = additive_mask(attention_mask[:, None, None, :], dtype)
        if self.is_decoder:
            queries = torch.arange(past, past + length, device=input_ids.device)[:, None]
            keys = torch.arange(past + length, device=input_ids.device)[None, :]
            mask = mask + additive_mask((keys <= queries)[None, None], dtype)
        cross_mask: torch.Tensor | None = None
        if encoder_hidden_states is not None:
            if encoder_attention_mask is None:
                encoder_attention_mask = torch.ones(encoder_hidden_states.shape[:2], device=input_ids.device)
            cross_mask = additive_mask(encoder_attention_mask[:, None, None, :], dtype)
        self_bias: torch.Tensor | None = None
        cross_bias: torch.Tensor | None = None
        block: Any  # an EvaBlock, reached by the checkpoint's module names (torch types them loosely)
        for block in self.block:
            hidden, self_bias = block.layer[0](hidden, mask, self_bias, cache)
            if self.is_decoder:
                assert encoder_hidden_states is not None and cross_mask is not None
                hidden, cross_bias = block.layer[1](hidden, encoder_hidden_states, cross_mask, cross_bias, cache)
            hidden = block.layer[-1](hidden)
        return BaseModelOutput(last_hidden_state=self.final_layer_norm(hidden))


def additive_mask(keep: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """0 where attention is allowed, the dtype's most negative value where not (as transformers does)."""
    return (1.0 - keep.to(dtype)) * torch.finfo(dtype).min


class EvaForConditionalGeneration(PreTrainedModel, GenerationMixin):
    """EVA's ``EVAModel``: shared embeddings, encoder, decoder and an untied ``lm_head``.

    Upstream also builds ``role_embeds``, which no checkpoint carries and no caller uses; left out.
    """

    config_class = EvaConfig
    base_model_prefix = "eva"
    main_input_name = "input_ids"
    _no_split_modules = ["EvaBlock"]  # noqa: RUF012 (transformers reads it as a class attribute)

    def __init__(self, config: EvaConfig) -> None:
        super().__init__(config)
        self.shared = nn.Embedding(config.vocab_size, config.d_model)
        self.encoder = EvaStack(config, self.shared, is_decoder=False)
        self.decoder = EvaStack(config, self.shared, is_decoder=True)
        self.lm_head = nn.Linear(config.d_model, config.vocab_size, bias=False)
        finish: Callable[[], None] = self.post_init  # transformers leaves it unannotated
        finish()

    def get_input_embeddings(self) -> nn.Embedding:
        return self.shared

    def get_output_embeddings(self) -> nn.Linear:
        return cast("nn.Linear", self.lm_head)

    def get_encoder(self, modality: str | None = None) -> EvaStack:
        return self.encoder

    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        decoder_input_ids: torch.Tensor | None = None,
        decoder_attention_mask: torch.Tensor | None = None,
        encoder_outputs: BaseModelOutput | tuple[torch.Tensor, ...] | None = None,
        cache: EncoderDecoderCache | None = None,
        use_cache: bool | None = None,
        **kwargs: Any,
    ) -> Seq2SeqLMOutput:
        encoded: BaseModelOutput
        if encoder_outputs is None:
            if input_ids is None:
                raise ValueError("EVA needs input_ids or encoder_outputs")
            encoded = self.encoder(input_ids, attention_mask)
        elif isinstance(encoder_outputs, BaseModelOutput):
            encoded = encoder_outputs
        else:
            encoded = BaseModelOutput(last_hidden_state=encoder_outputs[0])
        if decoder_input_ids is None:
            raise ValueError("EVA needs decoder_input_ids")
        use_cache = self.config.use_cache if use_cache is None else use_cache
        if use_cache and cache is None:
            cache = EncoderDecoderCache(DynamicCache(), DynamicCache())
        decoded = self.decoder(
            decoder_input_ids,
            decoder_attention_mask,
            encoder_hidden_states=encoded.last_hidden_state,
            encoder_attention_mask=attention_mask,
            cache=cache if use_cache else None,
        )
        return Seq2SeqLMOutput(
            logits=self.lm_head(decoded.last_hidden_state),
            cache=cache if use_cache else None,
            encoder_last_hidden_state=encoded.last_hidden_state,
        )


def eva_decoder_weights(model: EvaForConditionalGeneration) -> DecoderWeights:
    """EVA's decoder for the lean step (``engines/local/steps/seq2seq.py``): T5's module names, its own
    attention scale, exact gelu and the position bias of its first block."""
    from functools import partial

    from torch.nn import functional

    from zhbench.engines.local.steps.seq2seq import decoder_weights

    decoder: Any = model.decoder  # reached by the checkpoint's module names, which torch types loosely
    first = decoder.block[0].layer[0].SelfAttention
    device = model.device

    def position_bias(position: int) -> torch.Tensor:
        return cast("torch.Tensor", first.position_bias(position, 1, position + 1, device).to(model.dtype))

    return decoder_weights(
        model,
        norm_eps=decoder.final_layer_norm.eps,
        attention_scale=first.scale,
        output_scale=None,
        activation=partial(functional.gelu, approximate=decoder.block[0].layer[-1].DenseReluDense.approximate),
        position_bias=position_bias,
    )
