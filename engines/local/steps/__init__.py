"""Lean decoding steps: one token through a model's own weights without its forward's per-step Python,
bitwise the forward's logits. They import torch at their top: import them only where a model is loaded."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import torch


class CausalStep(Protocol):
    """One token of a decoder-only model after what its ``DynamicCache`` holds, extending the cache."""

    def run(self, token: torch.Tensor, cache: Any) -> torch.Tensor:
        """The next-token logits, [1, vocab], for ``token`` ([1, 1] ids)."""
        ...


def causal_step(model: Any) -> CausalStep | None:
    """The lean step whose forward ``model`` runs (GPT-2, the Llama layout), else None (the forward)."""
    from zhbench.engines.local.steps.gpt2 import Gpt2Step
    from zhbench.engines.local.steps.llama import LlamaStep

    return Gpt2Step.for_model(model) or LlamaStep.for_model(model)
