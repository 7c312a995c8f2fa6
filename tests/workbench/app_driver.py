"""Waiting on the real app headless: workers report through the event loop, so tests wait for state."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from zhbench.plain.memory_reading import MemoryReading
from zhbench.workbench.app import ZhbenchApp


async def wait_until(condition: Callable[[], bool], timeout: float = 60.0, what: str = "condition") -> None:
    """Let the app run until ``condition()`` holds (workers report through the event loop)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


async def models_loaded(app: ZhbenchApp, *panes: str) -> None:
    await wait_until(
        lambda: all(app.bench.pane(p).engine is not None and app.bench.pane(p).loading is None for p in panes),
        what=f"models in panes {panes}",
    )


async def replies_done(app: ZhbenchApp) -> None:
    await wait_until(lambda: not any(state.busy for state in app.bench.panes), what="replies to finish")


def fixed_memory(panes: object) -> MemoryReading:
    """A meter reading that does not depend on the machine (for screenshots)."""
    return MemoryReading(gpu_note="no NVIDIA GPU (test)", process_ram_bytes=512 * 2**20)
