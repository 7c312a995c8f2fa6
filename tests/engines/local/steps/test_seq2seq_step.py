"""The lean decoder step gives bitwise the logits of the model's own forward, for every encoder-decoder family."""

from __future__ import annotations

import pytest
import torch
from transformers import T5Config, T5ForConditionalGeneration
from transformers.cache_utils import DynamicCache, EncoderDecoderCache

from zhbench.engines.local.decoding import Seq2SeqDecoding
from zhbench.engines.local.steps.kv_buffer import FIRST_CAPACITY
from zhbench.engines.local.steps.seq2seq import DecoderStep, ForwardStep, decoder_step, t5_decoder_weights

PROMPT = [37, 52, 11, 90, 64, 23, 5, 71]


def forward_logits(model, input_ids: list[int], tokens: list[int]) -> list[torch.Tensor]:
    """The next-token logits after the decoder start and after each of ``tokens``, from ``model(...)`` with
    transformers' key/value cache: what ``generate()`` computes."""
    encoder_ids = torch.tensor([input_ids])
    mask = torch.ones_like(encoder_ids)
    cache = EncoderDecoderCache(DynamicCache(), DynamicCache())
    logits = []
    with torch.inference_mode():
        encoded = model.get_encoder()(input_ids=encoder_ids, attention_mask=mask)
        for token in [model.config.decoder_start_token_id, *tokens]:
            output = model(
                encoder_outputs=encoded,
                attention_mask=mask,
                decoder_input_ids=torch.tensor([[token]]),
                cache=cache,
                use_cache=True,
            )
            cache = output.cache
            logits.append(output.logits[:, -1].float())
    return logits


def assert_bitwise_same_as_forward(model, steps: int, weights) -> None:
    decoding = Seq2SeqDecoding(model, PROMPT, weights)
    assert isinstance(decoding._step, DecoderStep)  # the lean step runs, not the forward
    ours, tokens = [decoding.logits], []
    for _ in range(steps):
        tokens.append(int(decoding.logits.argmax()))
        decoding.advance(tokens[-1])
        ours.append(decoding.logits)
    for step, (mine, theirs) in enumerate(zip(ours, forward_logits(model, PROMPT, tokens), strict=True)):
        assert torch.equal(mine, theirs), f"step {step}: {(mine - theirs).abs().max()}"


@pytest.mark.slow
@pytest.mark.parametrize("family", ["chatyuan", "promptclue", "eva2"])
def test_each_family_decodes_bitwise_as_its_forward(engine_for, family):
    # past the buffers' first size, so growing them is covered too
    engine = engine_for(family)
    assert_bitwise_same_as_forward(engine.model, FIRST_CAPACITY + 6, engine.decoder_weights())


def test_t5_v1_0_layout_is_decoded_as_its_forward():
    """Original T5: one ``wi`` with relu, and the decoder output rescaled before the tied ``lm_head``."""
    torch.manual_seed(0)
    config = T5Config(
        vocab_size=100,
        d_model=32,
        d_ff=64,
        d_kv=8,
        num_heads=4,
        num_layers=2,
        feed_forward_proj="relu",
        decoder_start_token_id=0,
    )
    model = T5ForConditionalGeneration(config).eval()
    weights = t5_decoder_weights(model)
    assert weights is not None and weights.output_scale == 32**-0.5 and weights.layers[0].wi_gate is None
    assert_bitwise_same_as_forward(model, 10, weights)


def test_float16_t5_falls_back_to_the_forward(engine_for):
    """T5 in float16 clamps infinities in every block, which the lean step does not do: it is not used,
    nor for a T5 whose attention is not ``sdpa``."""
    model = T5ForConditionalGeneration(engine_for("chatyuan").model.config).eval()
    model.set_attn_implementation("eager")
    assert t5_decoder_weights(model) is None
    model = T5ForConditionalGeneration(engine_for("chatyuan").model.config).eval().half()
    assert t5_decoder_weights(model) is None
    decoding = Seq2SeqDecoding(model, PROMPT, t5_decoder_weights(model))
    assert isinstance(decoding._step, ForwardStep)
    assert torch.equal(decoding.logits, forward_logits(model, PROMPT, [])[0])


def test_beams_decode_and_reorder_bitwise_as_the_forward(engine_for):
    """EVA's beam search runs four beams at once and reorders them after every step."""
    engine = engine_for("eva2")
    model = engine.model
    with torch.inference_mode():
        encoded = model.get_encoder()(input_ids=torch.tensor([PROMPT])).last_hidden_state.repeat_interleave(4, 0)
    lean, forward = decoder_step(model, encoded, engine.decoder_weights()), ForwardStep(model, encoded)
    assert isinstance(lean, DecoderStep)
    tokens = torch.full((4, 1), model.config.decoder_start_token_id)  # every beam starts the same
    generator = torch.Generator().manual_seed(0)
    for _ in range(12):
        mine, theirs = lean.run(tokens), forward.run(tokens)
        assert torch.equal(mine, theirs), (mine - theirs).abs().max()
        beams = torch.randint(0, 4, (4,), generator=generator)  # some beams continue twice, some end
        lean.reorder(beams)
        forward.reorder(beams)
        tokens = torch.randint(10, 1000, (4, 1), generator=generator)  # beams that differ from here on
