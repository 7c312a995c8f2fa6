"""Will a local model fit where it is about to load? The estimate (``engines.hub.fit``) against what is free
now: NVML on a GPU, available RAM on the CPU. The CLI refuses a load that does not fit; the app's model list
can call ``check_fit`` for its mark."""

from __future__ import annotations

import os
from pathlib import Path

from zhbench.engines.errors import ZhbenchError
from zhbench.engines.hub.fit import FitVerdict, MemoryNeed, estimate_need, judge_fit, weight_tensors
from zhbench.workbench.session.memory import NvmlReader


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


def free_memory(nvml: NvmlReader | None = None) -> dict[str, int | None]:
    """Bytes free by device: ``cpu`` (available RAM), each ``cuda:N`` and ``cuda`` (the first GPU)."""
    free: dict[str, int | None] = {"cpu": available_ram_bytes()}
    gpus, _ = (nvml or NvmlReader()).read()
    for gpu in gpus:
        total, used = gpu.total_bytes, gpu.used_bytes
        free[f"cuda:{gpu.index}"] = total - used if total is not None and used is not None else None
    if "cuda:0" in free:
        free["cuda"] = free["cuda:0"]
    return free


def _cuda_dtype(family: str) -> str:
    """The dtype a family runs in on a GPU: its engine class's ``cuda_dtype`` (the built-in loaders are that
    class's ``from_options``), else float32 as the shared base does."""
    from zhbench.engines.registry import family_spec

    engine_class = getattr(family_spec(family).load, "__self__", None)
    dtype = getattr(engine_class, "cuda_dtype", "float32")
    return dtype if isinstance(dtype, str) else "float32"


def check_fit(
    spec: str,
    *,
    family: str | None = None,
    device: str | None = None,
    dtype: str | None = None,
    strategy: str | None = None,
    others_bytes: int = 0,
    nvml: NvmlReader | None = None,
) -> FitVerdict:
    """The verdict for loading the local model ``spec`` (a path or a cached hub id) as these options would;
    ``others_bytes``: what the other panes hold on that device."""
    from zhbench.engines.hub.resolve import resolve_model
    from zhbench.engines.local.devices import DTYPE_ALIASES, resolve_device
    from zhbench.engines.registry import detect_family

    path = resolve_model(spec)
    family = family or detect_family(path, None if Path(spec).expanduser().exists() else spec)
    if strategy is not None:
        device = strategy.split("->")[0].split()[0]
    device = resolve_device(device)
    dtype = DTYPE_ALIASES.get(dtype.lower(), dtype) if dtype else None
    tensors = weight_tensors(path)
    cuda_dtype = _cuda_dtype(family)

    def estimate(on: str, as_dtype: str | None, as_strategy: str | None) -> MemoryNeed:
        return estimate_need(
            path, family, device=on, dtype=as_dtype, strategy=as_strategy, cuda_dtype=cuda_dtype, tensors=tensors
        )

    need = estimate(device, dtype, strategy)
    return judge_fit(need, free_memory(nvml), others_bytes=others_bytes, alternative=estimate)


def refuse_unfit_load(
    spec: str,
    *,
    family: str | None = None,
    device: str | None = None,
    dtype: str | None = None,
    strategy: str | None = None,
) -> None:
    """Raise a ``ZhbenchError`` with the estimate and a suggestion when the model will not fit (before any of
    it is loaded); a model that fits, is tight, or whose fit cannot be told goes on."""
    from zhbench.engines.errors import ModelLoadError, UnknownFamilyError

    try:
        verdict = check_fit(spec, family=family, device=device, dtype=dtype, strategy=strategy)
    except (ModelLoadError, UnknownFamilyError, ValueError):
        return  # files or options the estimate cannot read: the load itself names the problem
    if verdict.verdict == "does not fit":
        raise ZhbenchError(f"{spec} {verdict.line()} (--force loads it anyway)")
