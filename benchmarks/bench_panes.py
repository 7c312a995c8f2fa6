"""First paint of the bench with 2 and with 4 panes, each with a tiny stand-in loading (issue 27 item 5).

The app runs headless (Textual's ``run_test``) at 200x40, wide enough for four panes beside the model list,
opened as ``zhbench --pane M ...`` opens it (every pane's model asked for at start, each loaded in its own
worker). Timed from the start of the app, each the median of ``--runs`` after one warm-up start (the first
imports torch): the first frame painted (the panes saying what they load), and the first frame painted
with every pane's header naming its loaded model. The two pane counts alternate, in one process.

    python benchmarks/bench_panes.py [--runs 5]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from zhbench.engines.registry import write_standin
from zhbench.widgets.chat_pane import ChatPane
from zhbench.workbench.app import ZhbenchApp
from zhbench.workbench.session.config import Config

FAMILIES = ("gpt2-dialogbot", "dialogpt-zh", "gpt2-dialogbot", "dialogpt-zh")


async def next_frame(app: ZhbenchApp) -> None:
    """Until the screen has been refreshed (painted) once more."""
    painted = asyncio.Event()
    app.screen.call_after_refresh(painted.set)
    await painted.wait()


async def time_start(folder: Path, models: list[Path]) -> tuple[float, float]:
    """Seconds from the app's start to its first painted frame, and to the first frame with every pane's
    model loaded and named in its header."""
    preload = {name: str(path) for name, path in zip("abcd", models, strict=False)}
    start = time.perf_counter()
    app = ZhbenchApp(
        config=Config(path=folder / "config.toml"), transcripts_folder=folder, offer_demos=False, preload=preload
    )
    async with app.run_test(size=(200, 40)):
        await next_frame(app)
        first = time.perf_counter() - start
        panes = list(app.screen.query(ChatPane))
        assert len(panes) == len(models) and all(pane.region.width for pane in panes)  # side by side
        while not all(
            state.engine is not None and "random weights" in str(pane.query_one(".pane-header").render())
            for state, pane in zip(app.bench.panes, panes, strict=True)
        ):
            await asyncio.sleep(0.005)
        await next_frame(app)
        loaded = time.perf_counter() - start
        app.exit()
    return first, loaded


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        models = [
            write_standin(family, folder / f"tiny-{i}-{family}", "safetensors") for i, family in enumerate(FAMILIES)
        ]
        asyncio.run(time_start(folder, models[:2]))  # warm-up: imports torch and the families once
        times: dict[int, list[tuple[float, float]]] = {2: [], 4: []}
        for _ in range(args.runs):
            for count in times:
                times[count].append(asyncio.run(time_start(folder, models[:count])))
    print(f"200x40 headless, tiny stand-ins, median of {args.runs} (slowest)")
    print("| panes | first frame (ms) | every pane's model loaded and painted (ms) |")
    print("|---:|---:|---:|")
    for count, runs in times.items():
        first, loaded = ([t[i] * 1000 for t in runs] for i in (0, 1))
        print(
            f"| {count} | {statistics.median(first):.0f} ({max(first):.0f}) "
            f"| {statistics.median(loaded):.0f} ({max(loaded):.0f}) |"
        )


if __name__ == "__main__":
    main()
