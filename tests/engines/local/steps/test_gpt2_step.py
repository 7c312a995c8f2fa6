"""The lean GPT-2 step gives bitwise the logits of the model's own forward, within a reply and across turns."""

from __future__ import annotations

import pytest
from transformers import GPT2LMHeadModel

from tests.engines.local.steps.causal_logits import PROMPT, assert_same, forward_logits, greedy, one_by_one
from zhbench.engines.local.decoding import CausalDecoding
from zhbench.engines.local.steps.gpt2 import Gpt2Step


@pytest.mark.parametrize("family", ["dialogpt-zh", "gpt2-dialogbot"])
def test_each_family_decodes_bitwise_as_its_forward(engine_for, family):
    model = engine_for(family).model
    decoding = CausalDecoding(model, PROMPT, model.config.n_positions)
    assert decoding._step is not None  # the lean step runs, not the forward
    ours, tokens = greedy(decoding, 20)
    assert_same(ours, forward_logits(model, [PROMPT, *one_by_one(tokens)]))


def test_a_turn_that_reuses_the_cache_decodes_as_a_fresh_forward(engine_for):
    model = engine_for("dialogpt-zh").model
    first = CausalDecoding(model, PROMPT, model.config.n_positions)
    _, reply = greedy(first, 8)
    # the next turn: the previous prompt and reply, then a new message
    message = [17, 42, 8]
    second = CausalDecoding(model, [*PROMPT, *reply, *message], model.config.n_positions, reuse=first)
    assert second.fed == len(message)  # the cache holds the rest
    ours, tokens = greedy(second, 12)
    # the forward fed the same way (a prompt split in two chunks rounds differently from one whole chunk)
    theirs = forward_logits(model, [PROMPT, *one_by_one(reply), message, *one_by_one(tokens)])
    assert_same(ours, theirs[len(reply) + 1 :])


def test_eager_attention_keeps_the_forward(engine_for):
    """The step reproduces the ``sdpa`` attention only; a model loaded with another keeps its forward."""
    model = GPT2LMHeadModel(engine_for("dialogpt-zh").model.config).eval()
    model.set_attn_implementation("eager")
    assert Gpt2Step.for_model(model) is None
    decoding = CausalDecoding(model, PROMPT, model.config.n_positions)
    ours, tokens = greedy(decoding, 3)
    assert_same(ours, forward_logits(model, [PROMPT, *one_by_one(tokens)]))
