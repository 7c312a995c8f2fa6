"""Time to reopen a long session in the app: a 500-turn session of two panes, from the choice to the
first paint of both panes with every message drawn.

The session is written as zhbench writes one (the same records, one JSON line each): 500 turns, each a
user message of 10-40 characters to both panes and a reply of 50-300 in each, the last reply with two
versions. The app runs headless (Textual's ``run_test``) at 150x40 with no models found; what is timed,
each the median of ``--runs``, is ``_session_chosen`` (reading the file, replaying its records into pane
states, the question skipped as the panes are empty) up to the first frame painted with each pane's last
messages (``FIRST_PAINT_VIEWS``: they fill the pane), and up to every message and reply mounted (the
earlier ones go in above after that frame); the models' loads (tiny stand-ins) run in their workers
meanwhile.

    python benchmarks/bench_reopen.py [--turns 500] [--runs 3]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from zhbench.engines.registry import write_standin
from zhbench.widgets.chat_pane import FIRST_PAINT_VIEWS, ChatPane, MessageView, ReplyView
from zhbench.workbench.app import ZhbenchApp
from zhbench.workbench.session.config import Config
from zhbench.workbench.session.records import MessageRecord, PaneModel, SessionRecord
from zhbench.workbench.session.transcripts import SUFFIX, json_line

TEXT = "今天天气很好我们去公园散步吧你觉得怎么样这个问题很有意思让我想一想"


def write_session(folder: Path, models: dict[str, Path], turns: int, rng: random.Random) -> Path:
    panes = {
        name: PaneModel(path.name, path.name.removeprefix("tiny-"), str(path), "cpu", "float32", params={"seed": 1})
        for name, path in models.items()
    }
    session_id = "20260101-000000-abcdef"
    lines = [json_line(SessionRecord(session_id, "2026-01-01T00:00:00.000+00:00", panes).to_json())]

    def text(low: int, high: int) -> str:
        return "".join(rng.choices(TEXT, k=rng.randint(low, high)))

    for turn in range(1, turns + 1):
        asked = text(10, 40)
        for name in panes:
            lines.append(json_line(MessageRecord(f"{name}-{turn}-user", name, turn, "user", asked, name, "t",
                                                 to=tuple(panes)).to_json()))  # fmt: skip
            stats = {"new_tokens": 50, "ttft_s": 0.1, "tokens_per_s": 20.0, "stop_reason": "eos"}
            reply = MessageRecord(f"{name}-{turn}-{turn}", name, turn, "assistant", text(50, 300), name, "t",
                                  params={"seed": 1}, stats=stats)  # fmt: skip
            lines.append(json_line(reply.to_json()))
    again = MessageRecord(f"a-{turns}-x", "a", turns, "assistant", text(50, 300), "a", "t",
                          regenerates=f"a-{turns}-{turns}")  # fmt: skip
    lines.append(json_line(again.to_json()))
    path = folder / f"{session_id}{SUFFIX}"
    path.write_text("".join(lines), encoding="utf-8")
    return path


async def next_frame(app: ZhbenchApp) -> None:
    """Until the screen has been refreshed (painted) once more."""
    painted = asyncio.Event()
    app.screen.call_after_refresh(painted.set)
    await painted.wait()


async def time_reopen(folder: Path, path: Path, turns: int) -> tuple[float, float]:
    """Seconds from the choice to the first frame with each pane's last messages painted, and to every
    message of both panes mounted."""
    app = ZhbenchApp(config=Config(path=folder / "config.toml"), transcripts_folder=folder, offer_demos=False)
    async with app.run_test(size=(150, 40)) as pilot:
        await pilot.pause()
        start = time.perf_counter()
        app._session_chosen(path)
        panes = [app.screen.query_one(f"#pane-{name}", ChatPane) for name in "ab"]

        def drawn(pane: ChatPane) -> int:
            return len(pane.query(MessageView)) + len(pane.query(ReplyView))

        while not all(drawn(pane) >= min(FIRST_PAINT_VIEWS, 2 * turns) for pane in panes):
            await asyncio.sleep(0.005)
        await next_frame(app)  # the frame with them painted
        first_paint = time.perf_counter() - start
        while not all(drawn(pane) == 2 * turns for pane in panes):
            await asyncio.sleep(0.005)
        await next_frame(app)
        everything = time.perf_counter() - start
        app.exit()
    return first_paint, everything


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=500)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        models = {
            name: write_standin(family, folder / f"tiny-{family}", "safetensors")
            for name, family in (("a", "gpt2-dialogbot"), ("b", "dialogpt-zh"))
        }
        path = write_session(folder, models, args.turns, random.Random(0))
        times = [asyncio.run(time_reopen(folder, path, args.turns)) for _ in range(args.runs)]
        size = path.stat().st_size
        first, whole = (statistics.median(t[i] for t in times) * 1000 for i in (0, 1))
        print(f"{args.turns} turns, 2 panes, {size / 1e6:.1f} MB, median of {args.runs}: first paint of both panes "
              f"{first:.0f} ms, every message mounted {whole:.0f} ms")  # fmt: skip


if __name__ == "__main__":
    main()
