"""Streaming throughput of zhbench's engines against the plain non-streaming upstream-style call.

For each family, the same stand-in weights generate the same number of tokens two ways, interleaved
in one run: ``model.generate(...)`` with upstream's arguments (no streaming), and zhbench's engine
streaming every piece through ``ReplyStream`` (a background thread and a queue, as the CLI and the app
use it). The ratio is streamed tokens/s over plain tokens/s; the target is at least 0.95.

    python benchmarks/bench_streaming.py [--tokens 64] [--rounds 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from functools import partial
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch

from zhbench.engines.registry import load_engine, write_standin

QUESTION = [{"role": "user", "content": "你好，今天天气怎么样？"}]
MODELS = Path(__file__).resolve().parent / "models"


def upstream_kwargs(family: str) -> dict[str, Any]:
    """The sampling upstream asks ``generate`` for (beam search is left out: it does not stream)."""
    return {
        "gpt2-dialogbot": {"do_sample": True, "top_k": 8},
        "dialogpt-zh": {"do_sample": False},
        "chatyuan": {"do_sample": True, "top_p": 1.0, "temperature": 0.7, "no_repeat_ngram_size": 3},
        "promptclue": {"do_sample": True, "top_p": 0.8},
    }[family]


def plain_rate(engine: Any, input_ids: torch.Tensor, kwargs: dict[str, Any], tokens: int) -> float:
    """Tokens/s of one non-streaming ``generate`` call, forced to ``tokens`` new tokens."""
    start = time.perf_counter()
    with torch.inference_mode():
        out = engine.model.generate(
            input_ids=input_ids,
            attention_mask=torch.ones_like(input_ids),
            max_new_tokens=tokens,
            min_new_tokens=tokens,
            pad_token_id=0,
            **kwargs,
        )
    new = out.shape[1] - (1 if engine.model.config.is_encoder_decoder else input_ids.shape[1])
    return new / (time.perf_counter() - start)


def streamed_rate(engine: Any, params: Any) -> float:
    """Tokens/s of one zhbench reply, every piece taken from ``ReplyStream``."""
    start = time.perf_counter()
    stream = engine.start_reply(QUESTION, params)
    for _ in stream:
        pass
    return stream.result.stats.new_tokens / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(f"torch {torch.__version__}, 1 thread, {args.tokens} new tokens, median of {args.rounds} interleaved rounds")
    print("| family | plain generate (tok/s) | zhbench streaming (tok/s) | ratio |")
    print("|---|---:|---:|---:|")
    for family in ("gpt2-dialogbot", "dialogpt-zh", "chatyuan", "promptclue"):
        folder = MODELS / family
        if not folder.is_dir():
            write_standin(family, folder)
        engine = load_engine(str(folder), device="cpu")
        params = engine.presets()[next(iter(engine.presets()))]
        params = params.with_overrides(
            {"max_new_tokens": args.tokens, "seed": 1, "greedy": family == "dialogpt-zh", "num_beams": 1}
        )
        prompt = engine.prompt_for(QUESTION, params)
        input_ids = torch.tensor([prompt.input_ids])
        kwargs = upstream_kwargs(family)

        plain = partial(plain_rate, engine, input_ids, kwargs, args.tokens)
        streamed = partial(streamed_rate, engine, params)
        plain(), streamed()  # warm up
        plain_rates, stream_rates = [], []
        for _ in range(args.rounds):
            plain_rates.append(plain())
            stream_rates.append(streamed())
        p, s = statistics.median(plain_rates), statistics.median(stream_rates)
        print(f"| {family} | {p:.0f} | {s:.0f} | {s / p:.2f} |")


if __name__ == "__main__":
    main()
