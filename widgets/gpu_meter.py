"""The memory meter: each GPU's used and total memory, what each pane's model holds, or the process's RAM."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from zhbench.plain.byte_sizes import format_bytes
from zhbench.plain.memory_reading import MemoryReading


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
        self.update(meter_text(reading), layout=False)  # one line, whatever it says


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
            text.append(f" {format_bytes(gpu.used_bytes)} / {format_bytes(gpu.total_bytes)}  ")
    else:
        text.append(f"{reading.gpu_note or 'no GPU'} · RAM {format_bytes(reading.process_ram_bytes)}  ")
    for pane in reading.panes:
        held = f"{pane.pane.upper()}: {format_bytes(pane.weight_bytes)} on {pane.device}"
        if pane.reserved_bytes is not None:
            held += f" (reserved {format_bytes(pane.reserved_bytes)})"
        text.append(held + "  ", style="bold")
    return text
