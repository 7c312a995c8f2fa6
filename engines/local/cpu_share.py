"""Sharing the CPU's cores between replies that generate at once (two panes answering the same message).

Left alone, each reply's torch ops would use every core, so two replies run twice as many busy threads
as there are cores and spend their time waiting on each other. Instead each generating thread is given
its share: torch's thread count is per calling thread (``at::set_num_threads`` sets OpenMP's count for
that thread), so a reply running alone uses every core torch would use, and two at once use half each.
The share is checked before every token, so when one reply ends the other takes the freed cores back at
its next token.

Replies run on threads that end with them (``ReplyStream``), and the app's own thread runs no torch: a
thread that has computed on several cores keeps an idle OpenMP team while it lives, and GNU OpenMP then
counts more threads than cores and stops every other team from spin-waiting between operations (a
ChatYuan-large step on 2 cores: 95 ms instead of 65 while such a thread lived; ``benchmarks/bench_real_sizes.py``).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager


class CpuShare:
    """The cores torch uses, split evenly between the replies running on the CPU right now."""

    def __init__(self, cores: int | None = None) -> None:
        self._cores = cores
        self._running = 0
        self._lock = threading.Lock()
        self._applied = threading.local()

    @property
    def cores(self) -> int:
        """torch's own thread count when first asked (before any share was applied)."""
        with self._lock:
            if self._cores is None:
                import torch

                self._cores = torch.get_num_threads()
            return self._cores

    def threads_each(self) -> int:
        """Threads one running reply gets now: its share of the cores, at least one."""
        cores = self.cores
        with self._lock:
            return max(1, cores // max(1, self._running))

    @contextmanager
    def taking_part(self) -> Iterator[None]:
        """Count the calling thread's reply among those sharing the cores while the block runs.

        Afterwards the thread gets every core back: torch also hands a thread's last count to threads
        started later (a model loading next), which must not inherit a reply's share.
        """
        cores = self.cores  # read torch's count before any thread changes it
        with self._lock:
            self._running += 1
        try:
            yield
        finally:
            with self._lock:
                self._running -= 1
            if getattr(self._applied, "threads", cores) != cores:
                import torch

                torch.set_num_threads(cores)
            self._applied.threads = None

    def apply(self) -> int:
        """Set the calling thread's torch thread count to its current share (only when it changed)."""
        threads = self.threads_each()
        if getattr(self._applied, "threads", None) != threads:
            import torch

            torch.set_num_threads(threads)
            self._applied.threads = threads
        return threads


#: the process's one share: every engine's replies on the CPU take part in it
CPU_SHARE = CpuShare()
