"""Rows of the model list that are plain data: the offer to download a hub id typed into the filter."""

from __future__ import annotations

import pytest

from zhbench.plain.model_rows import download_offer


@pytest.mark.parametrize(
    ("typed", "hf_id", "modelscope_id"),
    [
        ("Qwen/Qwen2.5-0.5B-Instruct", "Qwen/Qwen2.5-0.5B-Instruct", None),
        ("  hf:THUDM/glm-4-9b-chat ", "THUDM/glm-4-9b-chat", None),
        ("modelscope:ClueAI/ChatYuan-large-v1", None, "ClueAI/ChatYuan-large-v1"),
    ],
)
def test_a_hub_id_is_offered_from_the_hub_it_names(typed: str, hf_id: str | None, modelscope_id: str | None) -> None:
    offer = download_offer(typed)
    assert offer is not None and offer.source == "hub" and not offer.available
    assert (offer.hf_id, offer.modelscope_id) == (hf_id, modelscope_id)
    assert offer.id == offer.name == (hf_id or modelscope_id)


@pytest.mark.parametrize(
    "typed",
    [
        "qwen", "qwen 7b", "/home/me/models", "./models/x", "a/b/c", "ms:Qwen/Qwen3-8B", "通义/千问", "owner/",
        "a/b:q4 k",
    ],
)
def test_what_is_no_hub_id_is_not_offered(typed: str) -> None:
    assert download_offer(typed) is None


def test_a_gguf_repository_is_offered_with_the_quantization_typed_after_a_colon() -> None:
    offer = download_offer("Qwen/Qwen2.5-0.5B-Instruct-GGUF:q4_k_m")
    assert offer is not None and offer.hf_id == "Qwen/Qwen2.5-0.5B-Instruct-GGUF" and offer.quantization == "Q4_K_M"
    plain = download_offer("Qwen/Qwen2.5-0.5B-Instruct")
    assert plain is not None and plain.quantization is None
    assert download_offer("Qwen/Qwen2.5-0.5B-Instruct-GGUF:") is None
