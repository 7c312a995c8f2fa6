"""Running model work on a thread that ends with it, as the app runs every reply and ``ask`` its one.

Torch's CPU threads are an OpenMP team per calling thread, and GNU OpenMP waits between operations by
spinning while no more threads exist than cores. Where a reply runs therefore changes its speed on the
CPU (``engines/local/cpu_share.py``). Measured with the tiny gpt2-dialogbot stand-in on 2 cores, one kept
busy by another process (``benchmarks/bench_batch_load.py``): loaded on the main thread and answered on a
fresh thread (``ask``), about 140 tok/s; answered on the thread that loaded it (``batch`` before), 5 tok/s,
its team spinning against the busy process. So a reply never runs on a thread that outlives it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, TypeVar

Done = TypeVar("Done")


def in_fresh_thread(work: Callable[..., Done], *args: Any, cancel: threading.Event | None = None) -> Done:
    """``work(*args)`` on a thread of its own; its result returned, or its exception raised, here.

    Interrupted while waiting (Ctrl+C), this sets ``cancel``, so work that checks it stops within a token,
    waits for the thread to end, and raises the interruption on.
    """
    result: list[Done] = []
    failure: list[BaseException] = []

    def run() -> None:
        try:
            result.append(work(*args))
        except BaseException as exc:  # re-raised on the caller's thread
            failure.append(exc)

    thread = threading.Thread(target=run, name="zhbench-work", daemon=True)
    thread.start()
    try:
        thread.join()
    except BaseException:
        if cancel is not None:
            cancel.set()
            thread.join()
        raise
    if failure:
        raise failure[0]
    return result[0]
