"""What the lean causal steps are compared with: the model's own forward, fed as ``generate()`` feeds it."""

from __future__ import annotations

import torch
from transformers.cache_utils import DynamicCache

from zhbench.engines.local.decoding import CausalDecoding

PROMPT = [37, 52, 11, 90, 64, 23, 5, 71]


def forward_logits(model, chunks: list[list[int]]) -> list[torch.Tensor]:
    """The next-token logits after each chunk of ids, fed in turn to ``model(...)`` with transformers'
    key/value cache and only the last position's logits: what ``generate()`` computes for a prompt and then
    one token at a time."""
    cache = DynamicCache(config=model.config)
    logits = []
    with torch.inference_mode():
        for ids in chunks:
            output = model(input_ids=torch.tensor([ids]), cache=cache, use_cache=True, logits_to_keep=1)
            cache = output.cache
            logits.append(output.logits[:, -1].float())
    return logits


def one_by_one(tokens: list[int]) -> list[list[int]]:
    return [[token] for token in tokens]


def greedy(decoding: CausalDecoding, steps: int) -> tuple[list[torch.Tensor], list[int]]:
    logits, tokens = [decoding.logits], []
    for _ in range(steps):
        tokens.append(int(decoding.logits.argmax()))
        decoding.advance(tokens[-1])
        logits.append(decoding.logits)
    return logits, tokens


def assert_same(ours: list[torch.Tensor], theirs: list[torch.Tensor]) -> None:
    for step, (mine, reference) in enumerate(zip(ours, theirs, strict=True)):
        assert torch.equal(mine, reference), f"step {step}: {(mine - reference).abs().max()}"
