"""Time to find saved sessions by their text: 10,000 generated sessions, the search index against reading
every transcript.

The sessions are written as zhbench writes them (the same records, one JSON line each), 2 to 20 turns of
two panes, Chinese text drawn from the 2,500 most common characters, plus one session that holds a
rare phrase. Timed, each the median of ``--runs``: building the index from nothing (``find_sessions``
with no index file), a query through an index that is up to date (the folder is still stat-ed: the index
catches up first), a query after one session changed (one file read again), and the same query answered
by reading every transcript (``scan_sessions``, what a locked or damaged index falls back to).

    python benchmarks/bench_search.py [--sessions 10000] [--runs 5]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from zhbench.workbench.session.records import MessageRecord, PaneModel, SessionRecord
from zhbench.workbench.session.search import INDEX_NAME, find_sessions, scan_sessions
from zhbench.workbench.session.transcripts import SUFFIX, json_line

#: GB2312's first level: the 3,755 most common characters, of which the first 2,500 are drawn from
COMMON = bytes(range(0xB0, 0xD8))
RARE_PHRASE = "龘靐齉爩"
PANES = {
    "a": PaneModel("Qwen2.5-0.5B-Instruct", "chat-template", "/m/qwen", "cpu", "float32", params={"seed": None}),
    "b": PaneModel("ChatYuan-large-v2", "chatyuan", "/m/chatyuan", "cpu", "float32", params={"seed": None}),
}


def characters() -> list[str]:
    found = []
    for high in COMMON:
        for low in range(0xA1, 0xFF):
            try:
                found.append(bytes([high, low]).decode("gb2312"))
            except UnicodeDecodeError:
                continue
    return found[:2500]


def write_sessions(folder: Path, count: int, rng: random.Random) -> int:
    """``count`` session files; their total size in bytes."""
    pool = characters()

    def text(low: int, high: int) -> str:
        return "".join(rng.choices(pool, k=rng.randint(low, high)))

    total = 0
    for number in range(count):
        session_id = f"20260101-{number // 3600:02d}{number // 60 % 60:02d}{number % 60:02d}-{number:06x}"
        lines = [json_line(SessionRecord(session_id, "2026-01-01T00:00:00.000+00:00", dict(PANES)).to_json())]
        for turn in range(1, rng.randint(2, 20) + 1):
            asked = text(5, 40) + (RARE_PHRASE if number == count // 2 and turn == 2 else "")
            for pane in "ab":
                lines.append(json_line(MessageRecord(f"{pane}-{turn}-user", pane, turn, "user", asked, pane, "t",
                                                     to=("a", "b")).to_json()))  # fmt: skip
                reply = MessageRecord(f"{pane}-{turn}-{turn}", pane, turn, "assistant", text(20, 200), pane, "t")
                lines.append(json_line(reply.to_json()))
        data = "".join(lines).encode("utf-8")
        (folder / f"{session_id}{SUFFIX}").write_bytes(data)
        total += len(data)
    return total


def median_s(runs: int, setup: Callable[[], None], timed: Callable[[], object]) -> tuple[float, object]:
    times, result = [], None
    for _ in range(runs):
        setup()
        start = time.perf_counter()
        result = timed()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        size = write_sessions(folder, args.sessions, random.Random(0))
        print(f"{args.sessions} sessions, {size / 1e6:.0f} MB of transcripts")
        index = folder / INDEX_NAME
        nothing = lambda: None  # noqa: E731

        build, _ = median_s(args.runs, lambda: index.unlink(missing_ok=True), lambda: find_sessions(folder))
        print(f"index built from nothing:             {build * 1000:8.0f} ms  ({index.stat().st_size / 1e6:.0f} MB)")
        for query in (RARE_PHRASE, "天气", "的", "没有这句话的任何会话"):
            took, found = median_s(args.runs, nothing, lambda q=query: find_sessions(folder, q))  # type: ignore[misc]
            print(f"query {query!r:<24} up-to-date index: {took * 1000:8.1f} ms  {len(found.rows):>6} found")  # type: ignore[attr-defined]
        changed = folder / sorted(p.name for p in folder.glob(f"*{SUFFIX}"))[7]

        def touch() -> None:
            changed.write_bytes(changed.read_bytes())

        took, _ = median_s(args.runs, touch, lambda: find_sessions(folder, RARE_PHRASE))
        print(f"query after one session changed:      {took * 1000:8.1f} ms")
        took, rows = median_s(1, nothing, lambda: scan_sessions(folder, RARE_PHRASE))
        print(f"the same query reading every file:    {took * 1000:8.0f} ms  {len(rows):>6} found")  # type: ignore[arg-type]


if __name__ == "__main__":
    main()
