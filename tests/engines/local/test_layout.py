"""On the CPU in float32 the weights a decoding step reads faster column-major are stored so at load: the
right ones, a tied head once, no second copy kept, and the model's logits unchanged but for float rounding."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from zhbench.engines.registry import load_engine

#: every family loaded through transformers: Llama layout (nn.Linear), GPT-2 (Conv1D), T5 and EVA2.0
FAMILIES = ["chat-template", "dialogpt-zh", "gpt2-dialogbot", "promptclue", "chatyuan", "eva2"]


def column_major(weight: torch.Tensor) -> bool:
    return not weight.is_contiguous() and weight.t().is_contiguous()


def last_logits(engine: Any) -> torch.Tensor:
    """The next-token logits after the engine's prompt for one question."""
    ids = torch.tensor([engine.prompt_for([{"role": "user", "content": "你好，今天天气怎么样？"}]).input_ids])
    with torch.inference_mode():
        if engine.model.config.is_encoder_decoder:
            start = torch.tensor([[engine.model.config.decoder_start_token_id]])
            return engine.model(input_ids=ids, decoder_input_ids=start).logits[0, -1].clone()
        return engine.model(input_ids=ids).logits[0, -1].clone()


def test_a_llama_layout_model_keeps_its_widening_projections_and_tied_head_column_major(standin_dir):
    model = load_engine(str(standin_dir("chat-template")), device="cpu").model
    for layer in model.model.layers:
        assert column_major(layer.mlp.gate_proj.weight) and column_major(layer.mlp.up_proj.weight)
        for narrow in (layer.mlp.down_proj, layer.self_attn.k_proj, layer.self_attn.v_proj, layer.self_attn.o_proj):
            assert narrow.weight.is_contiguous()  # no wider out than in: rows read faster
    assert model.lm_head.weight is model.model.embed_tokens.weight  # still one tensor, tied
    assert column_major(model.lm_head.weight)


def test_gpt2_keeps_the_narrowing_conv1d_column_major(standin_dir):
    """GPT-2's Conv1D multiplies ``x @ weight`` ([in, out]): its rows are the other way round."""
    model = load_engine(str(standin_dir("dialogpt-zh")), device="cpu").model
    for block in model.transformer.h:
        assert column_major(block.mlp.c_proj.weight)  # 4 × width in, width out
        assert block.mlp.c_fc.weight.is_contiguous() and block.attn.c_attn.weight.is_contiguous()
    assert column_major(model.lm_head.weight) and model.lm_head.weight is model.transformer.wte.weight


@pytest.mark.parametrize("family", FAMILIES)
def test_relaying_keeps_no_second_copy_and_changes_the_logits_by_rounding_only(standin_dir, family):
    engine = load_engine(str(standin_dir(family)), device="cpu")
    parameters = list(engine.model.parameters())
    assert any(column_major(p) for p in parameters)
    for parameter in parameters:  # each weight's memory is its own size: the rows it had were freed
        assert parameter.untyped_storage().nbytes() == parameter.numel() * parameter.element_size()
    relaid = last_logits(engine)
    with torch.no_grad():
        for parameter in parameters:
            parameter.data = parameter.data.contiguous()
    torch.testing.assert_close(relaid, last_logits(engine), rtol=1e-5, atol=1e-5)


def test_bfloat16_weights_keep_their_rows(standin_dir):
    """torch's bfloat16 matrix–vector product on the CPU is far slower column-major."""
    model = load_engine(str(standin_dir("chat-template")), device="cpu", dtype="bfloat16").model
    assert all(parameter.is_contiguous() for parameter in model.parameters())
