"""Will a model fit? An estimate of the memory a local model needs, made before loading it, and a verdict
against what is free.

need = weights at the dtype (or a family's own placement: an RWKV strategy, a GGUF quantization) it will run
       in, counted from the weight files' headers without loading them
     + key/value cache at the context it will use, or a recurrent model's state
     + a measured overhead (``benchmarks/bench_fit.py``, figures in docs/benchmarks.md); a prompt's activations
       are not counted apart: they stayed within that overhead on the shapes measured.

The estimate is the family's own (``FamilySpec.estimate_memory``), else a transformers checkpoint's
(``engines.local.footprint``). The memory free is the caller's reading (NVML for a GPU, available RAM for the
CPU): see ``workbench.session.fit_check``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from zhbench.engines.api import FamilySpec, LoadOptions, MemoryNeed
from zhbench.engines.local.footprint import checkpoint_need
from zhbench.plain.byte_sizes import format_bytes

#: a verdict is "tight" when the need is above this share of what is free
TIGHT_SHARE = 0.85

Verdict = Literal["fits", "tight", "does not fit", "unknown"]


@dataclass(frozen=True)
class FitVerdict:
    need: MemoryNeed
    free_bytes: int | None  # None: could not be read
    verdict: Verdict
    suggestion: str | None = None

    def line(self) -> str:
        """One line for a person: the verdict, the need against what is free, and what would fit."""
        need = format_bytes(self.need.total_bytes)
        parts = (
            f"weights {format_bytes(self.need.weights_bytes)} + cache {format_bytes(self.need.cache_bytes)} at "
            f"{self.need.context} positions + overhead {format_bytes(self.need.overhead_bytes)}"
        )
        free = "free unknown" if self.free_bytes is None else f"{format_bytes(self.free_bytes)} free"
        text = f"{self.verdict}: needs about {need} on {self.need.device} ({self.need.placement}; {parts}), {free}"
        return text + (f"; {self.suggestion}" if self.suggestion else "")


# --- the estimate and the verdict ---------------------------------------------------------------------


def estimate_need(path: Path, family: FamilySpec, options: LoadOptions, context: int | None = None) -> MemoryNeed:
    """The memory loading the model at ``path`` with ``options`` will take: the family's own estimate, else
    a transformers checkpoint's in the family's dtype for the device."""
    if family.estimate_memory is not None:
        return family.estimate_memory(path, options, context)
    return checkpoint_need(path, options, family.dtype_on, context)


def fallbacks(family: FamilySpec, need: MemoryNeed) -> Sequence[LoadOptions]:
    """The placements to try when ``need`` does not fit: the family's own, else a smaller dtype on the same
    device, then the CPU."""
    if family.fallbacks is not None:
        return family.fallbacks(need)
    smaller = [LoadOptions(device=need.device, dtype=d) for d in ("bfloat16", "float16") if d != need.placement]
    return [*smaller, LoadOptions(device="cpu")]


def verdict_for(need_bytes: int, free_bytes: int | None) -> Verdict:
    if free_bytes is None:
        return "unknown"
    if need_bytes <= free_bytes * TIGHT_SHARE:
        return "fits"
    return "tight" if need_bytes <= free_bytes else "does not fit"


def judge_fit(
    need: MemoryNeed,
    free: Mapping[str, int | None],
    *,
    others_bytes: int = 0,
    alternative: Callable[[LoadOptions], MemoryNeed] | None = None,
    tries: Sequence[LoadOptions] = (),
) -> FitVerdict:
    """The verdict for ``need`` against ``free`` (bytes free by device, ``"cpu"`` for RAM), with a suggestion
    when it does not fit: the first of ``tries`` (other load options: a smaller dtype, a family's own placement,
    the CPU) whose estimate, ``alternative(options)``, fits; else unloading the other pane (which holds
    ``others_bytes`` on that device)."""
    free_here = free.get(need.device, free.get("cuda") if need.device.startswith("cuda") else None)
    verdict = verdict_for(need.total_bytes, free_here)
    if need.ram_bytes and verdict != "unknown":  # a GPU load's part in RAM must fit there too
        ram = verdict_for(need.ram_bytes, free.get("cpu"))
        verdict = max(verdict, ram, key=("fits", "tight", "unknown", "does not fit").index)
    if verdict != "does not fit":
        return FitVerdict(need, free_here, verdict)
    suggestion = _suggestion(need, free, free_here, others_bytes, alternative, tries)
    return FitVerdict(need, free_here, verdict, suggestion)


def _suggestion(
    need: MemoryNeed,
    free: Mapping[str, int | None],
    free_here: int | None,
    others_bytes: int,
    alternative: Callable[[LoadOptions], MemoryNeed] | None,
    tries: Sequence[LoadOptions],
) -> str | None:
    def fits(other: MemoryNeed) -> bool:
        here = free.get(other.device, free_here if other.device == need.device else None)
        return verdict_for(other.total_bytes, here) != "does not fit" and (
            not other.ram_bytes or verdict_for(other.ram_bytes, free.get("cpu")) != "does not fit"
        )

    if alternative is not None:
        for options in tries:
            try:
                other = alternative(options)
            except (ValueError, KeyError, IndexError):
                continue
            if other != need and fits(other):
                return f"{_shown(options)} would fit (about {format_bytes(other.total_bytes)})"
    if (
        others_bytes
        and free_here is not None
        and verdict_for(need.total_bytes, free_here + others_bytes) != "does not fit"
    ):
        return f"unloading the other pane would free {format_bytes(others_bytes)}, enough for it"
    return "--force to try anyway"


def _shown(options: LoadOptions) -> str:
    """Load options as the command line asks for them: a family's own option, else the dtype, else the device."""
    if options.extra:
        return " ".join(f"--{name} '{value}'" for name, value in options.extra.items())
    return f"--dtype {options.dtype}" if options.dtype else f"--device {options.device}"
