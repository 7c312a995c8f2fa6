"""A memory reading as plain data: what the meter shows and the reader in ``workbench.session.memory`` fills."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class GpuMemory:
    index: int
    name: str
    used_bytes: int | None  # None: this GPU could not be read just now
    total_bytes: int | None


@dataclass(frozen=True)
class PaneMemory:
    pane: str  # the pane's name: "a", "b", …
    device: str
    weight_bytes: int | None  # what the model's weights take
    reserved_bytes: int | None  # torch's reserved memory on that CUDA device (None on the CPU)


@dataclass(frozen=True)
class MemoryReading:
    gpus: tuple[GpuMemory, ...] = ()
    #: why there are no GPU figures (no NVIDIA GPU, no driver), or None when NVML answered
    gpu_note: str | None = None
    process_ram_bytes: int | None = None
    panes: tuple[PaneMemory, ...] = field(default_factory=tuple)
