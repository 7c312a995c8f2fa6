"""Batch throughput against a server whose replies are latency-bound: ``--concurrency 1`` against ``N``.

A loopback OpenAI-compatible test server (``tests/engines/remote/fake_server.py``, one thread per request)
streams every reply at a fixed pace, ``--chunks`` pieces ``--interval-ms`` apart, however many requests are
under way: what a batching server does while it has room in its batch. ``zhbench batch`` is run in this
process (``workbench.cli.main``, so Python's start-up is not counted) on ``--items`` one-line prompts with
the server configured as ``pace`` in a throwaway config, once with ``--concurrency 1`` and once with ``N``, each into a
fresh run folder. The rate is answers over the command's wall time (loading the model, the answers file's
fsyncs and the progress lines included); the target is a ratio of at least 6 for ``N`` = 8.

    python benchmarks/bench_batch_remote.py [--items 32] [--chunks 20] [--interval-ms 25] [--concurrency 8]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.engines.remote.fake_server import ChatScript, FakeServer, Handler, chunk, serve, usage_chunk
from zhbench.workbench.cli import main as zhbench
from zhbench.workbench.session.batch.store import read_run


def paced(pieces: int, interval_s: float) -> ChatScript:
    """A chat script: ``pieces`` one-character chunks ``interval_s`` apart, then the end of the reply."""

    def script(handler: Handler, body: dict[str, Any]) -> None:
        handler.start_stream()
        for _ in range(pieces):
            handler.send_event(chunk("字", model="paced"))
            time.sleep(interval_s)
        for line in (chunk(finish="stop", model="paced"), usage_chunk(20, pieces), "[DONE]"):
            handler.send_event(line)

    return script


def batch_rate(folder: Path, items: int, concurrency: int) -> tuple[float, float]:
    """One ``zhbench batch`` run: (answers a second, seconds)."""
    prompts = folder.parent / "prompts.txt"
    prompts.write_text("".join(f"请回答第{n}个问题。\n" for n in range(items)), encoding="utf-8")
    argv = ["batch", str(prompts), "--model", "pace/paced", "--concurrency", str(concurrency), "--out", str(folder)]
    start = time.monotonic()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()) as err:
        code = zhbench(argv)
    seconds = time.monotonic() - start
    answered = len(read_run(folder).answered())
    if code != 0 or answered != items:
        raise SystemExit(f"the run failed ({answered}/{items} answered):\n{err.getvalue()}")
    return answered / seconds, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=32, help="prompts in the set")
    parser.add_argument("--chunks", type=int, default=20, help="pieces each reply streams")
    parser.add_argument("--interval-ms", type=float, default=25.0, help="time between two pieces of a reply")
    parser.add_argument("--concurrency", type=int, default=8, help="the concurrency compared with 1")
    args = parser.parse_args()
    fake = FakeServer(models=["paced"], chat=paced(args.chunks, args.interval_ms / 1000))
    with tempfile.TemporaryDirectory() as temp:
        root = Path(temp)
        # a throwaway config and data folder: the developer's own are neither read nor written
        os.environ["XDG_CONFIG_HOME"] = str(root / "config")
        os.environ["XDG_DATA_HOME"] = str(root / "data")
        server = serve(fake)
        next(server)
        try:
            (root / "config" / "zhbench").mkdir(parents=True)
            (root / "config" / "zhbench" / "config.toml").write_text(
                f'[servers.pace]\nbase_url = "{fake.url}"\n', encoding="utf-8"
            )
            one, one_s = batch_rate(root / "one", args.items, 1)
            many, many_s = batch_rate(root / "many", args.items, args.concurrency)
        finally:
            server.close()
    reply_s = args.chunks * args.interval_ms / 1000
    print(
        f"loopback server, {args.chunks} chunks {args.interval_ms:g} ms apart a reply ({reply_s:.2f} s), "
        f"{args.items} items, `zhbench batch` in-process"
    )
    print(f"| concurrency | answers/s | wall (s) |\n|---:|---:|---:|\n| 1 | {one:.2f} | {one_s:.2f} |")
    print(f"| {args.concurrency} | {many:.2f} | {many_s:.2f} |")
    ratio = many / one
    print(f"ratio {ratio:.2f}× (target ≥ 6×): {'met' if ratio >= 6 else 'NOT met'}")


if __name__ == "__main__":
    main()
