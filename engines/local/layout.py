"""How a model's projection weights lie in memory on the CPU, for the matrix–vector products of decoding.

Decoding one token multiplies a single row of activations by every weight matrix, so it runs as fast as
the CPU's BLAS reads the weights, and MKL's float32 matrix–vector product reads some layouts much faster
than others. On the 2-core AMD EPYC this project is measured on: a product whose output is wider than its
input (the MLP's up and gate projections, the vocabulary head: about two thirds of a Llama-layout model's
weights) reads the matrix at 20–24 GB/s stored ``[in, out]`` and at 13–15 GB/s stored ``[out, in]``; one
whose output is narrower (the down projection) the other way round; square ones about the same. An
``nn.Linear`` keeps its weight as ``[out, in]`` and computes ``x @ weight.T``; GPT-2's ``Conv1D`` keeps
``[in, out]`` and computes ``x @ weight``. So zhbench stores the weight of every widening ``nn.Linear`` and
of every narrowing ``Conv1D`` column-major (the transpose of a contiguous copy): decoding at real sizes is
14–30% faster (``benchmarks/bench_layout.py``; figures in docs/benchmarks.md).

The model's own parameters are re-laid in place, so its forward, ``generate()`` and zhbench's lean steps
all multiply the same tensors: their logits stay bitwise equal to each other. Against the same model kept
in rows they differ only by float rounding (sums taken in another order). bfloat16 and float16 keep their
rows: torch's reduced-precision products on this CPU read columns 10–30× slower.

This module imports torch inside its functions: import it only where a model is loaded.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

#: the dtype re-laid: the CPU's default, where MKL's float32 product reads columns faster
COLUMN_MAJOR_DTYPE = "float32"
#: rows of a weight transposed at once while re-laying it: 512 rows of 896 floats is under 2 MiB
_BLOCK_ROWS = 512


def _wants_columns(module: Any) -> bool:
    """Whether the module's weight is best stored column-major: an ``nn.Linear`` (``x @ weight.T``) with an
    output wider than its input, or a GPT-2 ``Conv1D`` (``x @ weight``) with one narrower."""
    from torch import nn
    from transformers.pytorch_utils import Conv1D

    if isinstance(module, nn.Linear):
        return bool(module.out_features > module.in_features)
    if isinstance(module, Conv1D):
        return bool(module.nf < module.weight.shape[0])
    return False


def _transposed(rows: torch.Tensor) -> torch.Tensor:
    """A contiguous copy of ``rows.T``, copied a block of rows at a time: each block's source and target
    then stay in the cache (Qwen2.5-0.5B's re-laid weights in 0.8 s instead of 1.2 s in one strided copy)."""
    import torch

    columns = torch.empty((rows.shape[1], rows.shape[0]), dtype=rows.dtype)
    for start in range(0, rows.shape[0], _BLOCK_ROWS):
        columns[:, start : start + _BLOCK_ROWS].copy_(rows[start : start + _BLOCK_ROWS].t())
    return columns


def lay_out_for_cpu(model: Any, dtype: str) -> int:
    """Store the weights of ``model`` (on the CPU) each decoding product reads faster column-major so, in
    place, where ``dtype`` is float32; the number of weights re-laid.

    A weight shared by several modules (a head tied to the embedding) is re-laid once, and stays shared.
    Each copy is made before the old one is freed, so loading peaks at one weight more than the model.
    """
    if dtype != COLUMN_MAJOR_DTYPE:
        return 0
    import torch

    relaid = 0
    with torch.no_grad():
        for module in model.modules():
            if not _wants_columns(module):
                continue
            weight = module.weight
            if not weight.is_contiguous():
                continue  # already re-laid through another module sharing it
            weight.data = _transposed(weight.data).t()
            relaid += 1
    return relaid
