"""Fitting a long conversation into a context, before and after issue 26, side by side in one run; and the
peak memory of reading a gzip bomb from a hostile server.

Fitting: the chat-template stand-in builds its prompt for conversations of ``--turns`` messages (each about
``--chars`` characters), once with ``engines.context.fit_newest`` as it is and once with the oldest-first
scan it replaced (every tail from the oldest is rendered and tokenised until one fits), kept here as the
reference. Printed: seconds per prompt and the ratio. The scan is skipped above ``--scan-limit`` turns.

Gzip bomb: ``GET /v1/models`` from a loopback server answering 1 GiB of spaces gzipped to about 1 MiB;
printed: the process's peak RSS growth (``ru_maxrss``) while zhbench reads and refuses it.

    python benchmarks/bench_hostile_fit.py [--turns 101 401 801 2001] [--chars 40] [--scan-limit 801]
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.engines.remote.fake_server import FakeServer, raw, serve
from zhbench.engines import context
from zhbench.engines.errors import RemoteError
from zhbench.engines.registry import load_engine, write_standin
from zhbench.engines.remote.server import ad_hoc_server, list_models

T = TypeVar("T")


def oldest_first(items: list[T], fits: Callable[[list[T]], bool]) -> list[T]:
    """The fitting before issue 26: drop the oldest item until the rest fits."""
    start = 0
    while start < len(items) - 1 and not fits(items[start:]):
        start += 1
    return items[start:]


def seconds_per_prompt(engine: object, history: list[dict[str, str]]) -> float:
    started = time.perf_counter()
    engine.prompt_for(history)  # type: ignore[attr-defined]
    return time.perf_counter() - started


def fitting(turns: list[int], chars: int, scan_limit: int) -> None:
    with tempfile.TemporaryDirectory() as folder:
        engine = load_engine(str(write_standin("chat-template", Path(folder) / "tiny", None)), device="cpu")
        print(f"{'turns':>6} {'now s':>8} {'before s':>9} {'ratio':>7}")
        galloping = context.fit_newest
        for count in turns:
            history = [
                {"role": ("user", "assistant")[i % 2], "content": f"第{i}句" + "话" * chars} for i in range(count)
            ]
            now = seconds_per_prompt(engine, history)
            before = None
            if count <= scan_limit:
                context.fit_newest = oldest_first  # type: ignore[assignment]
                try:
                    before = seconds_per_prompt(engine, history)
                finally:
                    context.fit_newest = galloping  # type: ignore[assignment]
            shown = f"{before:9.3f} {before / now:7.0f}" if before is not None else f"{'-':>9} {'-':>7}"
            print(f"{count:>6} {now:8.3f} {shown}")


def bomb(size: int) -> Iterator[bytes]:
    packer = zlib.compressobj(9, zlib.DEFLATED, zlib.MAX_WBITS | 16)
    for _ in range(size // 2**20):
        yield packer.compress(b" " * 2**20)
    yield packer.flush()


def gzip_bomb() -> None:
    body = b"".join(bomb(2**30))
    for fake in serve(FakeServer()):
        fake.listing = raw(200, {"Content-Type": "application/json", "Content-Encoding": "gzip"}, iter([body]))
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        started = time.perf_counter()
        try:
            list_models(ad_hoc_server(fake.url), timeout_s=60)
        except RemoteError as exc:
            outcome = str(exc)
        grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
        print(
            f"gzip bomb ({len(body) / 2**20:.1f} MiB -> 1 GiB): {time.perf_counter() - started:.2f} s, "
            f"peak RSS +{grown / 1024:.0f} MiB: {outcome}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, nargs="+", default=[101, 401, 801, 2001])
    parser.add_argument("--chars", type=int, default=40)
    parser.add_argument("--scan-limit", type=int, default=801)
    args = parser.parse_args()
    gzip_bomb()  # first: the model loads of the fitting raise the peak RSS past what the bomb would
    fitting(args.turns, args.chars, args.scan_limit)


if __name__ == "__main__":
    main()
