"""Lean decoding steps: one token through a model's own weights without its forward's per-step Python,
bitwise the forward's logits. They import torch at their top: import them only where a model is loaded."""
