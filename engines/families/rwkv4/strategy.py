"""RWKV strategies: where and in what precision each layer runs (``cuda fp16i8 *10 -> cuda fp16``).

The grammar is the rwkv package's (0.8.32 ``rwkv/model.py``), checked before the package sees it.
"""

from __future__ import annotations

import re

from zhbench.engines.errors import ZhbenchError
from zhbench.engines.local.devices import resolve_device, resolve_dtype

# rwkv 0.8.32 model.py's strategy grammar, less the i4/i3 suffixes it accepts but does not implement for v4.
STRATEGY_PATTERN = re.compile(
    r"^(?:(?:^|->) *(?:cuda(?::\d+)?|cpu|mps|dml) (?:fp16|fp32|bf16)(?:i8)?(?: \*\d+\+?)? *)+$"
)
STRATEGY_HELP = (
    "a strategy is one or more stages 'DEVICE TYPE [*LAYERS[+]]' joined by '->', DEVICE one of cpu, cuda, "
    "cuda:N, mps, dml and TYPE one of fp32, fp16, bf16, optionally with i8 (8-bit weights); for example "
    "'cuda fp16', 'cpu fp32', 'cuda fp16i8 *10 -> cuda fp16', 'cuda fp16i8 *10+'"
)
#: what ChatRWKV runs in on a GPU when no strategy says otherwise
CUDA_DTYPE = "float16"
_STRATEGY_TYPES = {"float32": "fp32", "float16": "fp16", "bfloat16": "bf16"}
_DTYPES = {value: key for key, value in _STRATEGY_TYPES.items()}


def default_strategy(device: str | None, dtype: str | None) -> str:
    """The strategy of a load that names none: ``device`` (default: ``cuda`` when torch sees a GPU, else ``cpu``)
    in ``dtype`` (default: fp16 on a GPU, fp32 on the CPU, as ChatRWKV)."""
    device = resolve_device(device)
    dtype = resolve_dtype(dtype, device, cuda_default=CUDA_DTYPE)
    return f"{device} {_STRATEGY_TYPES[dtype]}"


def resolve_strategy(strategy: str | None, device: str | None, dtype: str | None) -> str:
    """The strategy to load with: ``strategy`` (checked), else one made from ``device`` and ``dtype``:
    ``cuda fp16`` when torch sees a GPU, ``cpu fp32`` without (ChatRWKV's own defaults)."""
    import torch

    if strategy is None:
        return default_strategy(device, dtype)
    text = " ".join(strategy.split())
    if not STRATEGY_PATTERN.match(text):
        raise ZhbenchError(f"invalid RWKV strategy {strategy!r}: {STRATEGY_HELP}")
    if "cuda" in text and not torch.cuda.is_available():
        raise ZhbenchError(f"strategy {text!r} asks for CUDA, but torch sees no CUDA GPU (use 'cpu fp32')")
    return text


def strategy_placement(strategy: str) -> tuple[str, str]:
    """The device and dtype of a strategy's first stage, e.g. ``("cuda", "float16")``."""
    device, kind = strategy.split("->")[0].split()[:2]
    dtype = _DTYPES[kind.removesuffix("i8")]
    return device, dtype + (" (8-bit weights)" if kind.endswith("i8") else "")

