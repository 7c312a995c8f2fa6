"""Batch throughput of one local model against its ``ask`` throughput: the same items, the same tokens.

The model is loaded once, as ``zhbench ask`` loads it (``workbench.cli.common.load`` and ``params`` from
``ask``'s own options). Each round, interleaved:

- ``ask``: every item answered as ``zhbench ask --json`` answers one (``engine.reply``, no streaming thread),
  the item's batch seed given, so both sides generate exactly the same tokens;
- ``batch``: ``run_batch`` over the same items into a fresh run folder: the per-item seeds, the answer
  records, an fsync per answer, the progress callbacks.

The rate of each is new tokens over the wall time from its first item's start to its last answer (stored,
for the batch); the target is a ratio of at least 0.95 (no per-item reload, nothing slow between items).
What a batch spends once per model besides (opening the run, letting the model go: a full ``gc.collect()``)
is shown apart. The ratio is the median of each round's ratio: the two sides of a round run back to back,
so a machine shared with other work slows both alike.

    python benchmarks/bench_batch.py [--model DIR] [--items 16] [--tokens 32] [--rounds 9]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch

from zhbench.engines.api import ChatEngine
from zhbench.engines.registry import write_standin
from zhbench.engines.types import GenerationParams
from zhbench.workbench.cli import build_parser
from zhbench.workbench.cli.common import load, params
from zhbench.workbench.session.batch.prompts import PromptItem, builtin_set
from zhbench.workbench.session.batch.runner import ModelProgress, item_seed, run_batch
from zhbench.workbench.session.batch.store import BatchStore, RunSettings, read_run

MODELS = Path(__file__).resolve().parent / "models"
RUN_SEED = 2024


class LastAnswer:
    """A progress listener that shows nothing and notes when the model started and its last answer came."""

    def __init__(self) -> None:
        self.first_item_at = self.last_answer_at = 0.0

    def started(self, progress: ModelProgress) -> None: ...

    def advanced(self, progress: ModelProgress) -> None:
        self.first_item_at, self.last_answer_at = progress.started_at, time.monotonic()

    def finished(self, progress: ModelProgress) -> None: ...


@dataclass(frozen=True)
class Measured:
    tokens: int
    #: from the first item's start to the last answer
    items_s: float
    #: the whole call, with what is done once per model
    whole_s: float = 0.0

    @property
    def rate(self) -> float:
        return self.tokens / self.items_s


def ask(engine: ChatEngine, settings: GenerationParams, items: tuple[PromptItem, ...]) -> Measured:
    """Every item answered the way ``ask --json`` answers one."""
    tokens = 0
    start = time.monotonic()
    for item in items:
        seeded = settings.with_overrides({"seed": item_seed(RUN_SEED, item.id, 0)})
        tokens += engine.reply(list(item.messages), seeded).stats.new_tokens
    return Measured(tokens, time.monotonic() - start)


def batch(engine: ChatEngine, settings: GenerationParams, items: tuple[PromptItem, ...]) -> Measured:
    """One batch run of every item into a fresh run folder."""
    listener = LastAnswer()
    with tempfile.TemporaryDirectory() as folder:
        start = time.monotonic()
        run = RunSettings("bench", items, ("model",), {}, repeat=1, seed=RUN_SEED, created="bench")
        with BatchStore(Path(folder), run) as store:
            run_batch(store, ["model"], load=lambda _: engine, settings_for=lambda _: settings, progress=listener)
        whole = time.monotonic() - start
        answers = read_run(Path(folder)).answers.values()
        assert all(not answer.failed for answer in answers) and len(answers) == len(items)
        tokens = sum(int((answer.message.stats or {})["new_tokens"]) for answer in answers)
    return Measured(tokens, listener.last_answer_at - listener.first_item_at, whole)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, help="a model folder (default: the tiny gpt2-dialogbot stand-in)")
    parser.add_argument("--items", type=int, default=16, help="items of zh-basic to answer each round")
    parser.add_argument("--tokens", type=int, default=32, help="max_new_tokens")
    parser.add_argument("--rounds", type=int, default=9)
    args = parser.parse_args()
    model = args.model or MODELS / "gpt2-dialogbot"
    if args.model is None and not model.is_dir():
        write_standin("gpt2-dialogbot", model)
    torch.set_num_threads(1)  # one core: the machine's others are shared, and one is steadier to measure

    ask_args = build_parser().parse_args(
        ["ask", "--model", str(model), "--device", "cpu", "--set", f"max_new_tokens={args.tokens}", "你好"]
    )
    engine = load(ask_args)
    settings = params(engine, ask_args)
    items = builtin_set("zh-basic").items[: args.items]
    ask(engine, settings, items[:2])  # warm up
    rounds = []
    for round_number in range(args.rounds):
        # alternate which goes first, so a drift of the machine's speed within a round favours neither
        order = (ask, batch) if round_number % 2 == 0 else (batch, ask)
        results = {measure: measure(engine, settings, items) for measure in order}
        assert results[ask].tokens == results[batch].tokens, "the same seeds must give the same tokens"
        rounds.append((results[ask], results[batch]))
    a = statistics.median(asked.rate for asked, _ in rounds)
    b = statistics.median(batched.rate for _, batched in rounds)
    ratio = statistics.median(batched.rate / asked.rate for asked, batched in rounds)
    once = statistics.median(batched.whole_s - batched.items_s for _, batched in rounds)
    ask_tokens = rounds[0][0].tokens
    print(
        f"torch {torch.__version__}, 1 thread · {engine.family} at {model} · {len(items)} items, up to "
        f"{args.tokens} new tokens ({ask_tokens} in all) · median of {args.rounds} interleaved rounds"
    )
    print("| model | ask (tok/s) | batch (tok/s) | batch / ask | batch's cost once per model |")
    print("|---|---:|---:|---:|---:|")
    print(f"| {model.name} | {a:.1f} | {b:.1f} | {ratio:.3f} | {once:.2f} s |")


if __name__ == "__main__":
    main()
