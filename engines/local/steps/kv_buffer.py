"""Keys and values of attention layers, grown in place instead of concatenated anew at every token.

``torch.cat([held, new], dim=-2)``, which transformers' ``DynamicCache`` runs for every layer at every
step, copies the whole cache each time: at 800 tokens of DialoGPT-small that is 59 MB a step against
495 MB of weights. ``GrowingBuffer`` writes the new token after the held ones in a buffer that doubles
when full and hands out views of it, so a step copies only the new token; ``LayerBuffers`` holds one for the
keys and one for the values of each layer of a model, as the lean steps use them.

This module imports torch at its top: import it only where a model is loaded.
"""

from __future__ import annotations

from typing import Any

import torch

#: a buffer's first size, in tokens
FIRST_CAPACITY = 64


class GrowingBuffer:
    """One layer's keys or values along the sequence dimension (-2)."""

    def __init__(self) -> None:
        self._storage: torch.Tensor | None = None

    def extended(self, held: torch.Tensor, new: torch.Tensor) -> torch.Tensor:
        """``held`` followed by ``new``, as ``torch.cat([held, new], dim=-2)`` gives them.

        When ``held`` is the start of this buffer (what the last call returned, or a crop of it), ``new``
        is written after it in place; otherwise (a tensor made elsewhere, or no room left) ``held`` is first
        copied into a new buffer twice the size needed.
        """
        length, total = held.shape[-2], held.shape[-2] + new.shape[-2]
        storage = self._storage
        if (
            storage is None
            or held.data_ptr() != storage.data_ptr()
            or held.stride() != storage.stride()
            or total > storage.shape[-2]
        ):
            storage = new.new_empty((*new.shape[:-2], max(FIRST_CAPACITY, 2 * total), new.shape[-1]))
            storage[..., :length, :] = held
            self._storage = storage
        storage[..., length:total, :] = new
        return storage[..., :total, :]

    def reordered(self, held: torch.Tensor, beams: torch.Tensor) -> torch.Tensor:
        """``held`` with its rows (beams, dimension 0) in the order ``beams``, as ``index_select`` gives them,
        kept in this buffer so that the next token is still written in place."""
        if self._storage is None or held.data_ptr() != self._storage.data_ptr():
            return held.index_select(0, beams)
        self._storage[..., : held.shape[-2], :] = held.index_select(0, beams)
        return held


class LayerBuffers:
    """A ``GrowingBuffer`` for the keys and one for the values of each of a model's attention layers."""

    def __init__(self, layers: int) -> None:
        self._pairs = [(GrowingBuffer(), GrowingBuffer()) for _ in range(layers)]

    def extended(
        self, layer: int, keys: torch.Tensor, values: torch.Tensor, new_keys: torch.Tensor, new_values: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Layer ``layer``'s ``keys`` and ``values`` each followed by the new ones (``GrowingBuffer.extended``)."""
        key_buffer, value_buffer = self._pairs[layer]
        return key_buffer.extended(keys, new_keys), value_buffer.extended(values, new_values)

    def extend_cached(self, layer: int, held: Any, new_keys: torch.Tensor, new_values: torch.Tensor) -> None:
        """Extend ``held``, a ``DynamicCache`` layer, in place of ``DynamicLayer.update``'s ``torch.cat``."""
        held.keys, held.values = self.extended(layer, held.keys, held.values, new_keys, new_values)

    def reordered(
        self, layer: int, keys: torch.Tensor, values: torch.Tensor, beams: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Layer ``layer``'s ``keys`` and ``values`` with their beams in the order ``beams``
        (``GrowingBuffer.reordered``)."""
        key_buffer, value_buffer = self._pairs[layer]
        return key_buffer.reordered(keys, beams), value_buffer.reordered(values, beams)
