"""Running a benchmark's torch work on threads that end with it, as the app does."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any


def in_fresh_thread(work: Callable[..., Any], *args: Any) -> Any:
    """``work(*args)`` on a thread of its own, as the app runs every load and every reply.

    This matters for speed: a thread that has run torch ops on several cores keeps an idle OpenMP team,
    and while it lives GNU OpenMP counts more threads than cores and stops every other thread's team from
    spin-waiting between operations. A 2-thread ChatYuan-large step measured 95 ms on a new thread while
    the main thread held such a team, 65 ms without. So no thread that outlives a measurement runs torch.
    """
    result: list[Any] = []
    failure: list[BaseException] = []

    def run() -> None:
        try:
            result.append(work(*args))
        except BaseException as exc:  # re-raised on the caller's thread
            failure.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    if failure:
        raise failure[0]
    return result[0]
