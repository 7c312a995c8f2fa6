"""The memory meter: each GPU's used and total memory, what each pane's model holds, or the process's RAM."""

from __future__ import annotations

from dataclasses import dataclass, field

from rich.text import Text
from textual.widgets import Static


@dataclass(frozen=True)
class GpuMemory:
    index: int
    name: str
    used_bytes: int | None  # None: this GPU could not be read just now
    total_bytes: int | None


@dataclass(frozen=True)
class PaneMemory:
    pane: str  # "a" or "b"
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


def human_bytes(count: int | None) -> str:
    if count is None:
        return "?"
    for unit, size in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if count >= size:
            return f"{count / size:.1f} {unit}"
    return f"{count} B"


def _bar(fraction: float, width: int = 12) -> str:
    filled = round(max(0.0, min(1.0, fraction)) * width)
    return "█" * filled + "░" * (width - filled)


class GpuMeter(Static):
    """One line, refreshed about once a second by the app with a new ``MemoryReading``."""

    DEFAULT_CSS = """
    GpuMeter { height: 1; padding: 0 1; background: $panel; color: $text-muted; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__("memory: reading…", id=id, markup=False)
        self.reading: MemoryReading | None = None

    def show(self, reading: MemoryReading) -> None:
        self.reading = reading
        self.update(meter_text(reading))


def meter_text(reading: MemoryReading) -> Text:
    text = Text()
    if reading.gpus:
        for gpu in reading.gpus:
            if gpu.used_bytes is None or not gpu.total_bytes:
                text.append(f"GPU{gpu.index} {gpu.name}: unreadable  ")
                continue
            fraction = gpu.used_bytes / gpu.total_bytes
            style = "red" if fraction > 0.9 else "yellow" if fraction > 0.7 else "green"
            text.append(f"GPU{gpu.index} ")
            text.append(_bar(fraction), style=style)
            text.append(f" {human_bytes(gpu.used_bytes)} / {human_bytes(gpu.total_bytes)}  ")
    else:
        text.append(f"{reading.gpu_note or 'no GPU'} · RAM {human_bytes(reading.process_ram_bytes)}  ")
    for pane in reading.panes:
        held = f"{pane.pane.upper()}: {human_bytes(pane.weight_bytes)} on {pane.device}"
        if pane.reserved_bytes is not None:
            held += f" (reserved {human_bytes(pane.reserved_bytes)})"
        text.append(held + "  ", style="bold")
    return text
