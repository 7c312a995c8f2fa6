"""zhbench's EVA model against an independent implementation: transformers' own T5.

With ``attn_scale`` off and the tanh gelu, EVA is T5 v1.1 (untied head, no output rescaling): the same
weights must give the same logits. With EVA's settings the logits must differ, and the difference must
be exactly the two things EVA changes: scores divided by sqrt(d_kv) (which is T5 with every query
projection divided by sqrt(d_kv)) and the exact gelu (T5 with ``dense_act_fn="gelu"``).
"""

from __future__ import annotations

import math

import pytest
import torch
from transformers import T5Config, T5ForConditionalGeneration

from zhbench.engines.families.eva2.model import EvaForConditionalGeneration, eva_config

SIZES = {"d_model": 32, "d_ff": 48, "d_kv": 8, "num_heads": 4, "num_layers": 2, "num_decoder_layers": 2}
VOCAB = 64
# 41 positions: the relative position buckets are used up to their logarithmic range
ENCODER_IDS = torch.cat(
    [torch.randint(6, VOCAB, (1, 40), generator=torch.Generator().manual_seed(1)), torch.tensor([[60]])], 1
)
DECODER_IDS = torch.tensor([[60, 5, 17, 17, 42, 9, 4]])


def eva(*, attn_scale: bool, gelu: str, state: dict[str, torch.Tensor]) -> EvaForConditionalGeneration:
    config = eva_config({**SIZES, "vocab_size": VOCAB, "attn_scale": attn_scale, "bos_token_id": 60})
    config.gelu_approximation = gelu
    model = EvaForConditionalGeneration(config).double().eval()
    model.load_state_dict(state, strict=True)
    return model


def t5(state: dict[str, torch.Tensor], *, exact_gelu: bool = False, query_scale: float = 1.0):
    config = T5Config(
        **SIZES,
        vocab_size=VOCAB,
        feed_forward_proj="gated-gelu",
        tie_word_embeddings=False,
        relative_attention_num_buckets=32,
        relative_attention_max_distance=128,
        dropout_rate=0.0,
        decoder_start_token_id=60,
        pad_token_id=5,
        eos_token_id=4,
    )
    if exact_gelu:
        config.dense_act_fn = "gelu"
    state = {
        name: tensor * query_scale if name.endswith(("SelfAttention.q.weight", "EncDecAttention.q.weight")) else tensor
        for name, tensor in state.items()
    }
    model = T5ForConditionalGeneration.from_pretrained(None, config=config, state_dict=state, dtype=torch.float64)
    assert torch.equal(model.lm_head.weight, state["lm_head.weight"])  # untied, as EVA's
    return model.eval()


@pytest.fixture(scope="module")
def state() -> dict[str, torch.Tensor]:
    """Random float64 weights under the converter's key names, large enough that every part matters.

    float64, so that what is left between two implementations of one function is below 1e-9.
    """
    generator = torch.Generator().manual_seed(0)
    with torch.device("meta"):
        names = EvaForConditionalGeneration(eva_config({**SIZES, "vocab_size": VOCAB})).state_dict()
    weights = {}
    for name, tensor in names.items():
        scale = 0.3 if "layer_norm" not in name else 0.2
        base = 1.0 if "layer_norm" in name else 0.0
        weights[name] = base + torch.randn(tensor.shape, generator=generator, dtype=torch.float64) * scale
    weights["encoder.embed_tokens.weight"] = weights["decoder.embed_tokens.weight"] = weights["shared.weight"]
    return weights


def logits(model, *, cached: bool = False) -> torch.Tensor:
    with torch.no_grad():
        if not cached:
            return model(input_ids=ENCODER_IDS, decoder_input_ids=DECODER_IDS, use_cache=False).logits
        steps, cache = [], None
        encoded = model.get_encoder()(input_ids=ENCODER_IDS)
        for position in range(DECODER_IDS.shape[1]):
            out = model(encoder_outputs=encoded, decoder_input_ids=DECODER_IDS[:, position : position + 1], cache=cache)
            cache = out.cache
            steps.append(out.logits)
        return torch.cat(steps, dim=1)


def test_without_eva_changes_it_is_t5(state):
    expected = logits(t5(state))
    model = eva(attn_scale=False, gelu="tanh", state=state)
    assert expected.abs().max() > 1.0  # logits carry signal, not noise around zero
    torch.testing.assert_close(logits(model), expected, atol=1e-9, rtol=1e-9)
    torch.testing.assert_close(logits(model, cached=True), expected, atol=1e-9, rtol=1e-9)


@pytest.mark.parametrize(
    "attn_scale, gelu",
    [(True, "tanh"), (False, "none"), (True, "none")],
    ids=["attn_scale", "exact_gelu", "eva2"],
)
def test_eva_settings_differ_exactly_by_the_scale_and_the_gelu(state, attn_scale, gelu):
    model = eva(attn_scale=attn_scale, gelu=gelu, state=state)
    ours = logits(model)
    plain_t5 = logits(t5(state))
    assert (ours - plain_t5).abs().max() > 1e-2
    explained = logits(
        t5(state, exact_gelu=gelu == "none", query_scale=1 / math.sqrt(SIZES["d_kv"]) if attn_scale else 1.0)
    )
    torch.testing.assert_close(ours, explained, atol=1e-9, rtol=1e-9)
    torch.testing.assert_close(logits(model, cached=True), explained, atol=1e-9, rtol=1e-9)


def test_beam_sample_generate_runs_on_the_key_value_cache(state):
    """upstream's ``generate()`` call feeds the decoder one new token per step, and the cache changes no token."""
    model = eva(attn_scale=True, gelu="none", state=state)
    fed = []
    hook = model.decoder.register_forward_hook(lambda module, args, output: fed.append(args[0].shape[1]))
    arguments = {"do_sample": True, "num_beams": 4, "top_k": 0, "top_p": 0.9, "temperature": 0.9, "max_length": 12}
    runs = {}
    with torch.no_grad():
        for use_cache in (True, False):
            fed.clear()
            torch.manual_seed(0)
            runs[use_cache] = (model.generate(ENCODER_IDS, min_length=12, use_cache=use_cache, **arguments), list(fed))
    hook.remove()
    (cached, cached_fed), (uncached, uncached_fed) = runs[True], runs[False]
    assert cached.shape == (1, 12) and cached[0, 0] == 60
    assert set(cached_fed) == {1}
    assert uncached_fed == list(range(1, 12))  # without the cache every step re-reads the whole reply
    assert torch.equal(cached, uncached)
