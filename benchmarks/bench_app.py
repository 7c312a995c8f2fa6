"""The app's own cost: tokens/s with both panes streaming, and the delay from a key press to the screen.

1. Throughput. The same two engines (tiny stand-ins, greedy, a fixed number of tokens) answer the same
   message twice, interleaved: once through the app (headless, both panes streaming, every piece going
   through a message, the batched redraw and the transcript), once driven directly in two threads with
   nothing on screen. The ratio is app tokens/s over direct tokens/s; the target is at least 0.95.
2. Key-press latency. While both panes stream, keys are posted to the app the way the terminal driver
   posts them; the delay is measured from the post to the first frame written to the terminal after the
   composer shows the key. The same is measured with the panes idle, for reference.

The app runs headless but draws each frame into the escape sequences a terminal would get (then drops
them), so the drawing cost a real terminal costs is counted.

    python benchmarks/bench_app.py [--tokens 300] [--rounds 5] [--keys 40] [--size tiny|real]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import threading
import time
from functools import partial
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch
from real_models import REAL_MODELS, tiny

from zhbench.engines.registry import load_engine
from zhbench.workbench.session.fresh_thread import in_fresh_thread

FAMILIES = ("dialogpt-zh", "chatyuan")  # no context limit in the way of a long reply
#: the published models of those families (``--size real``), as ``benchmarks/real_models.py`` writes them
REAL_NAMES = {"dialogpt-zh": "chat-DialoGPT-small-zh", "chatyuan": "ChatYuan-large-v1"}
QUESTION = "你好，今天天气怎么样？"


def standin(family: str, size: str = "tiny") -> Path:
    """The tiny stand-in, or (``real``) one with the published model's sizes and random weights."""
    return tiny(family) if size == "tiny" else REAL_MODELS[REAL_NAMES[family]].path()


def fixed_params(engine: Any, tokens: int) -> Any:
    """Greedy with the end-of-reply token never reached in practice: both ways generate the same tokens."""
    return engine.default_params().with_overrides({"greedy": True, "max_new_tokens": tokens, "seed": 0})


def direct_rate(engines: list[Any], tokens: int) -> tuple[float, int]:
    """Both engines answering at once in two plain threads; (tokens/s over both, tokens)."""
    counts: list[int] = []

    def run(engine: Any) -> None:
        reply = engine.reply([{"role": "user", "content": QUESTION}], fixed_params(engine, tokens), on_text=len)
        counts.append(reply.stats.new_tokens)

    threads = [threading.Thread(target=run, args=(e,)) for e in engines]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(counts) / (time.perf_counter() - start), sum(counts)


async def app_rate(app: Any, tokens: int) -> tuple[float, int]:
    """Both panes answering one message through the app; (tokens/s over both, tokens)."""
    from zhbench.widgets.composer import Composer
    from zhbench.workbench.session.transcripts import read_session

    for state in app.bench.panes:
        state.params = fixed_params(state.engine, tokens)
        state.history.clear()
    composer = app.query_one(Composer)
    composer.text = QUESTION
    # Woken by the app when both replies are on screen: polling would itself take the GIL from the engines.
    both_shown = asyncio.Event()
    deck, shown = app.bench_screen.deck, []  # the panes and their replies
    show_end = deck._show_end

    def counting(pane: str, entry: Any) -> None:
        show_end(pane, entry)
        shown.append(pane)
        if len(shown) == len(app.bench.panes):
            both_shown.set()

    deck._show_end = counting
    start = time.perf_counter()
    composer.action_submit("both")
    await both_shown.wait()
    elapsed = time.perf_counter() - start
    deck._show_end = show_end
    replies = [m for m in read_session(app.bench.transcript.path).messages if m.role == "assistant"][-2:]
    total = sum(m.stats["new_tokens"] for m in replies)
    for state in app.bench.panes:
        state.shown.clear()
    return total / elapsed, total


async def key_latencies(app: Any, count: int, frames: list[float]) -> list[float]:
    """Seconds from posting each key to the first frame written after the composer shows it."""
    from textual import events

    from zhbench.widgets.composer import Composer

    composer = app.query_one(Composer)
    composer.focus()
    composer.text = ""
    delays = []
    for index in range(count):
        char = "xyz"[index % 3]
        before = composer.text
        start = time.perf_counter()
        app.post_message(events.Key(char, char))
        while composer.text == before:
            await asyncio.sleep(0)
        shown_at = time.perf_counter()
        while not frames or frames[-1] < shown_at:
            await asyncio.sleep(0.0005)
        delays.append(frames[-1] - start)
        await asyncio.sleep(0.02)  # keys a fast typist's distance apart
    composer.text = ""
    return delays


async def main_async(args: argparse.Namespace) -> None:
    from zhbench.workbench.app import ZhbenchApp
    from zhbench.workbench.session.config import Config

    def report(line: str = "") -> None:
        # A running, non-headless app takes over sys.stdout; the results go to the real one.
        print(line, file=sys.__stdout__, flush=True)

    class TerminalApp(ZhbenchApp):
        """Headless, but drawing every frame into terminal output as in a real terminal (then dropped)."""

        @property
        def is_headless(self) -> bool:
            return False

    paths = {pane: standin(family, args.size) for pane, family in zip("ab", FAMILIES, strict=True)}
    # loaded off the main thread, as the app loads them (see workbench/session/fresh_thread.py)
    direct_engines = [in_fresh_thread(partial(load_engine, device="cpu"), str(paths[p])) for p in "ab"]
    folder = Path(tempfile.mkdtemp(prefix="zhbench-bench-"))
    app = TerminalApp(
        preload={p: str(paths[p]) for p in "ab"},
        config=Config(path=folder / "config.toml"),
        transcripts_folder=folder / "transcripts",
        offer_demos=False,
    )
    async with app.run_test(size=(160, 45)) as pilot:
        while not all(state.engine is not None for state in app.bench.panes):
            await pilot.pause(0.05)
        frames: list[float] = []
        driver_write = app._driver.write

        def timed_write(data: str) -> None:
            frames.append(time.perf_counter())
            driver_write(data)

        app._driver.write = timed_write
        app_rates, direct_rates = [], []
        for _ in range(args.rounds):
            rate, app_tokens = await app_rate(app, args.tokens)
            app_rates.append(rate)
            rate, direct_tokens = direct_rate(direct_engines, args.tokens)
            direct_rates.append(rate)
            assert app_tokens == direct_tokens, (app_tokens, direct_tokens)
        app_tok, direct_tok = statistics.median(app_rates), statistics.median(direct_rates)
        report(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {args.size} {FAMILIES}, greedy")
        report(f"{args.tokens} new tokens per pane, median of {args.rounds} interleaved rounds\n")
        report("| both panes streaming | tok/s (both panes) | ratio |")
        report("|---|---:|---:|")
        report(f"| engines alone, two threads | {direct_tok:.0f} | 1.00 |")
        report(f"| through the app | {app_tok:.0f} | {app_tok / direct_tok:.2f} |")

        idle = await key_latencies(app, args.keys, frames)
        for state in app.bench.panes:
            state.params = fixed_params(state.engine, 100_000)
        from zhbench.widgets.composer import Composer

        composer = app.query_one(Composer)
        composer.text = QUESTION
        composer.action_submit("both")
        while not all(state.reply is not None and state.reply.text for state in app.bench.panes):
            await asyncio.sleep(0.001)
        busy = await key_latencies(app, args.keys, frames)
        app.bench_screen.action_stop()
        while any(state.busy for state in app.bench.panes):
            await asyncio.sleep(0.01)

        def row(name: str, values: list[float]) -> str:
            ordered = sorted(values)
            p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
            return f"| {name} | {statistics.median(values) * 1000:.1f} | {p95 * 1000:.1f} | {max(values) * 1000:.1f} |"

        report(f"\nkey press to screen, {args.keys} keys each")
        report("| panes | median (ms) | p95 (ms) | max (ms) |")
        report("|---|---:|---:|---:|")
        report(row("idle", idle))
        report(row("both streaming", busy))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--keys", type=int, default=40)
    parser.add_argument(
        "--size",
        choices=("tiny", "real"),
        default="tiny",
        help="tiny stand-ins, or random weights with the published models' layer sizes "
        "(written once to benchmarks/models)",
    )
    args = parser.parse_args()
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
