"""Will a local model fit where it is about to load? The estimate (``engines.hub.fit``) against what is free
now: NVML on a GPU, available RAM on the CPU. The CLI refuses a load that does not fit; the app's model list
can call ``check_fit`` for its mark."""

from __future__ import annotations

from collections.abc import Mapping

from zhbench.engines.api import LoadOptions, MemoryNeed
from zhbench.engines.errors import ZhbenchError
from zhbench.engines.hub.fit import FitVerdict, estimate_need, fallbacks, judge_fit
from zhbench.engines.local.devices import available_ram_bytes
from zhbench.workbench.session.memory import NvmlReader


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


def check_fit(
    spec: str,
    *,
    family: str | None = None,
    device: str | None = None,
    dtype: str | None = None,
    extra: Mapping[str, str] | None = None,
    others_bytes: int = 0,
    nvml: NvmlReader | None = None,
) -> FitVerdict:
    """The verdict for loading the local model ``spec`` (a path or a cached hub id; ``family`` when already
    told) as these options would; ``others_bytes``: what the other panes hold on that device."""
    from zhbench.engines.registry import family_spec, resolve

    path, family = resolve(spec, family)
    chosen = family_spec(family)

    def estimate(options: LoadOptions) -> MemoryNeed:
        return estimate_need(path, chosen, options)

    need = estimate(LoadOptions(device=device, dtype=dtype, extra=dict(extra or {})))
    tries = fallbacks(chosen, need)
    return judge_fit(need, free_memory(nvml), others_bytes=others_bytes, alternative=estimate, tries=tries)


def refuse_unfit_load(
    spec: str,
    *,
    family: str | None = None,
    device: str | None = None,
    dtype: str | None = None,
    extra: Mapping[str, str] | None = None,
    shown_as: str | None = None,
) -> None:
    """Raise a ``ZhbenchError`` with the estimate and a suggestion when the model will not fit (before any of
    it is loaded), naming it ``shown_as`` (default: ``spec``); a model that fits, is tight, or whose fit cannot
    be told goes on."""
    from zhbench.engines.errors import ModelLoadError, UnknownFamilyError

    try:
        verdict = check_fit(spec, family=family, device=device, dtype=dtype, extra=extra)
    except (ModelLoadError, UnknownFamilyError, ValueError):
        return  # files or options the estimate cannot read: the load itself names the problem
    if verdict.verdict == "does not fit":
        raise ZhbenchError(f"{shown_as or spec} {verdict.line()} (--force loads it anyway)")
