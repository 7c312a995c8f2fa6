"""Choosing where a model runs: CUDA when there is one, else the CPU; the dtype follows upstream; the RAM free."""

from __future__ import annotations

import os

from zhbench.engines.errors import ZhbenchError

DTYPE_ALIASES = {
    "float32": "float32",
    "fp32": "float32",
    "float16": "float16",
    "fp16": "float16",
    "half": "float16",
    "bfloat16": "bfloat16",
    "bf16": "bfloat16",
}


def resolve_device(requested: str | None) -> str:
    """``requested`` as given (checked), or ``cuda`` when torch sees a GPU, else ``cpu``."""
    import torch

    if requested is None:
        return "cuda" if torch.cuda.is_available() else "cpu"
    if requested.startswith("cuda") and not torch.cuda.is_available():
        raise ZhbenchError(f"device {requested!r} was asked for, but torch sees no CUDA GPU")
    try:
        torch.device(requested)
    except RuntimeError:
        raise ZhbenchError(f"unknown device {requested!r} (expected cpu, cuda or cuda:N)") from None
    return requested


def resolve_dtype(requested: str | None, device: str, cuda_default: str) -> str:
    """``requested`` (normalised), or the family's CUDA dtype on a GPU, or float32 on the CPU."""
    if requested is None:
        return cuda_default if device.startswith("cuda") else "float32"
    try:
        return DTYPE_ALIASES[requested.lower()]
    except KeyError:
        known = ", ".join(sorted(set(DTYPE_ALIASES.values())))
        raise ZhbenchError(f"unknown dtype {requested!r} (expected one of {known})") from None


def available_ram_bytes() -> int | None:
    """RAM that can be had without swapping (Linux ``MemAvailable``; elsewhere the free pages), or None."""
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, AttributeError):
        return None
