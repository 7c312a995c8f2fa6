"""Batch against ``ask`` on a loaded machine: the real commands, while another process keeps one core busy.

Each round runs, as separate processes and in alternating order, ``zhbench ask`` on every item (streamed,
as a user runs it) and one ``zhbench batch`` over the same items into a fresh run folder, with the same
model and options; a process spinning on one core (bounded: it ends itself after ``--busy-limit``
seconds, and is ended when the bench ends) runs the whole time. Both sides are measured by the engine's
own stats: new tokens over generation time summed over the replies (``ask`` prints them on stderr,
``batch`` records them with each answer), so process start and model loading count for neither. The
ratio is the median of each round's batch rate over its ask rate. Target: at least 0.9.

    python benchmarks/bench_batch_load.py [--model DIR] [--items 6] [--tokens 48] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from zhbench.engines.registry import write_standin
from zhbench.workbench.session.batch.prompts import builtin_set

MODELS = Path(__file__).resolve().parent / "models"
#: what ``ask`` prints on stderr after a streamed reply: its stats line, new tokens and their rate first
ASK_STATS = re.compile(r"^\[(\d+) tokens · .*? · ([\d.]+) tok/s", re.MULTILINE)
BUSY = "import time, sys\nend = time.monotonic() + float(sys.argv[1])\nwhile time.monotonic() < end: pass\n"


def zhbench(*argv: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "zhbench", *argv], capture_output=True, text=True, env=env, check=True, timeout=900
    )


def ask_rate(model: Path, prompts: list[str], options: list[str], env: dict[str, str]) -> float:
    """New tokens a second of generation over every prompt, each asked as a user asks (streamed), from the
    stats line ``ask`` prints on stderr."""
    tokens = seconds = 0.0
    for prompt in prompts:
        done = zhbench("ask", "--model", str(model), *options, prompt, env=env)
        found = ASK_STATS.search(done.stderr)
        if found is None:
            raise SystemExit(f"no stats line from ask: {done.stderr[-500:]}")
        count, rate = int(found[1]), float(found[2])
        tokens += count
        seconds += count / rate
    return tokens / seconds


def batch_rate(model: Path, prompts_file: Path, options: list[str], env: dict[str, str]) -> float:
    with tempfile.TemporaryDirectory() as folder:
        zhbench("batch", str(prompts_file), "--model", str(model), *options, "--out", folder, env=env)
        answers = [json.loads(line) for line in (Path(folder) / "answers.jsonl").read_text("utf-8").splitlines()]
    stats = [answer["message"]["stats"] for answer in answers if answer.get("type") == "answer"]
    return sum(s["new_tokens"] for s in stats) / sum(s["total_s"] for s in stats)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, help="a model folder (default: the tiny gpt2-dialogbot stand-in)")
    parser.add_argument("--items", type=int, default=6, help="items of zh-basic each side answers per round")
    parser.add_argument("--tokens", type=int, default=48, help="max_new_tokens")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--busy-limit", type=float, default=900.0, help="seconds the busy process may run at most")
    args = parser.parse_args()
    model = args.model or MODELS / "gpt2-dialogbot"
    if args.model is None and not model.is_dir():
        write_standin("gpt2-dialogbot", model)
    items = builtin_set("zh-basic").items[: args.items]
    prompts = [item.messages[-1]["content"] for item in items]
    options = ["--set", f"max_new_tokens={args.tokens}", "--seed", "7"]
    env = os.environ | {"HF_HUB_DISABLE_PROGRESS_BARS": "1", "XDG_DATA_HOME": tempfile.mkdtemp()}
    busy = subprocess.Popen([sys.executable, "-c", BUSY, str(args.busy_limit)])
    try:
        time.sleep(0.5)
        with tempfile.TemporaryDirectory() as folder:
            prompts_file = Path(folder) / "prompts.txt"
            prompts_file.write_text("\n".join(prompts) + "\n", encoding="utf-8")
            rounds = []
            for number in range(args.rounds):
                sides = {}
                for side in ("ask", "batch") if number % 2 == 0 else ("batch", "ask"):
                    sides[side] = (
                        ask_rate(model, prompts, options, env)
                        if side == "ask"
                        else batch_rate(model, prompts_file, options, env)
                    )
                rounds.append((sides["ask"], sides["batch"]))
                print(f"round {number + 1}: ask {sides['ask']:.1f} tok/s, batch {sides['batch']:.1f} tok/s", flush=True)
    finally:
        busy.kill()
        busy.wait()
    ratio = statistics.median(b / a for a, b in rounds)
    print(
        f"{os.cpu_count()} cores, one kept busy by another process · {model.name} · {len(prompts)} items, up to "
        f"{args.tokens} new tokens · median of {args.rounds} rounds (alternating order)"
    )
    print("| model | ask (tok/s) | batch (tok/s) | batch / ask |")
    print("|---|---:|---:|---:|")
    ask_median = statistics.median(a for a, _ in rounds)
    batch_median = statistics.median(b for _, b in rounds)
    print(f"| {model.name} | {ask_median:.1f} | {batch_median:.1f} | {ratio:.3f} |")


if __name__ == "__main__":
    main()
