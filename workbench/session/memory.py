"""Reading memory for the meter: GPUs through NVML (nvidia-ml-py), the process's RAM, torch's reserved memory.

Every query is wrapped: with no NVIDIA GPU, no driver, or a GPU that stops answering, the reading says
so and the meter keeps going. NVML is initialised lazily, once, in the polling thread.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Iterable

from zhbench.plain.memory_reading import GpuMemory, MemoryReading, PaneMemory


class NvmlReader:
    """Used and total memory of every NVIDIA GPU, or why there are none."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ready = False
        self._failure: str | None = None
        self._count = 0

    def _init(self) -> None:
        if self._ready or self._failure is not None:
            return
        try:
            import pynvml
        except ImportError:
            self._failure = "no GPU figures: nvidia-ml-py is not installed"
            return
        try:
            pynvml.nvmlInit()
            self._count = pynvml.nvmlDeviceGetCount()
        except pynvml.NVMLError as exc:
            self._failure = f"no NVIDIA GPU ({_nvml_reason(exc)})"
            return
        self._ready = True
        if self._count == 0:
            self._failure = "no NVIDIA GPU (the driver lists none)"

    def read(self) -> tuple[tuple[GpuMemory, ...], str | None]:
        with self._lock:
            self._init()
            if self._failure is not None:
                return (), self._failure
            import pynvml

            gpus = []
            for index in range(self._count):
                name = f"GPU {index}"
                try:
                    handle = pynvml.nvmlDeviceGetHandleByIndex(index)
                    name = _text(pynvml.nvmlDeviceGetName(handle))
                    info = pynvml.nvmlDeviceGetMemoryInfo(handle)
                    gpus.append(GpuMemory(index, name, int(info.used), int(info.total)))
                except pynvml.NVMLError:
                    gpus.append(GpuMemory(index, name, None, None))
            return tuple(gpus), None


def _nvml_reason(exc: Exception) -> str:
    name = type(exc).__name__.removeprefix("NVMLError_")
    return {"LibraryNotFound": "no NVIDIA driver found", "DriverNotLoaded": "the NVIDIA driver is not loaded"}.get(
        name, str(exc) or name
    )


def _text(value: bytes | str) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else value


def process_ram_bytes() -> int | None:
    """Resident memory of this process (Linux ``/proc``; elsewhere the peak, from ``resource``)."""
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        pass
    try:
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak if sys.platform == "darwin" else peak * 1024
    except (ImportError, OSError):
        return None


def torch_reserved_bytes(device: str) -> int | None:
    """torch's reserved memory on a CUDA device; None on the CPU or when torch has not touched CUDA.

    torch is never imported here: a pane that loaded a model has imported it already.
    """
    torch = sys.modules.get("torch")
    if torch is None or not device.startswith("cuda"):
        return None
    try:
        if not torch.cuda.is_initialized():
            return None
        return int(torch.cuda.memory_reserved(device))
    except (RuntimeError, AssertionError):
        return None


def read_memory(nvml: NvmlReader, panes: Iterable[tuple[str, str, int | None]]) -> MemoryReading:
    """One reading: GPUs, this process's RAM, and for each ``(pane, device, weight_bytes)`` its memory."""
    gpus, note = nvml.read()
    held = tuple(PaneMemory(pane, device, weights, torch_reserved_bytes(device)) for pane, device, weights in panes)
    return MemoryReading(gpus=gpus, gpu_note=note, process_ram_bytes=process_ram_bytes(), panes=held)
