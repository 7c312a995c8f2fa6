"""Row-major against column-major wide projections on the CPU (``engines/local/layout.py``), side by side.

Each model is loaded once (float32 on the CPU, as zhbench loads it) and decoded greedily in rounds that
alternate the two layouts of the same weights: rows, as transformers keeps them, and zhbench's layout,
where every ``nn.Linear`` whose output is wider than its input is stored column-major. Reported: ms per
generated token after the first for zhbench's reply and for ``generate()``, the weights read per token
over that time, the seconds re-laying takes at load, and how far the two layouts' logits for one prompt
differ (float rounding only; each layout's own forward and lean step stay bitwise equal).

Models: Qwen2.5-0.5B-Instruct's shape (``bench_chat_template.py``) and the seed models at their published
sizes (``benchmarks/real_models.py``); random weights in the real files.

    python benchmarks/bench_layout.py [--tokens 32] [--rounds 3] [--models NAME ...]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch
from bench_chat_template import real_shape_model
from bench_real_sizes import QUESTION, bytes_per_step, fixed_length, generate_ms, zhbench_ms
from real_models import REAL_MODELS

from zhbench.engines.local.layout import lay_out_for_cpu
from zhbench.engines.registry import load_engine
from zhbench.workbench.session.fresh_thread import in_fresh_thread

MODELS: dict[str, Callable[[], Path]] = {
    "Qwen2.5-0.5B-Instruct (shape)": real_shape_model,
    **{
        name: REAL_MODELS[name].path
        for name in (
            "gpt2-dialogbot-base-chinese",
            "chat-DialoGPT-small-zh",
            "PromptCLUE-base-v1-5",
            "ChatYuan-large-v1",
            "EVA2.0-base",
        )
    },
}


def rows(model: Any) -> None:
    """Every weight back in transformers' own row-major layout."""
    with torch.no_grad():
        for parameter in model.parameters():
            if not parameter.is_contiguous():
                parameter.data = parameter.data.contiguous()


def columns(model: Any) -> float:
    """zhbench's layout; the seconds it took."""
    start = time.perf_counter()
    lay_out_for_cpu(model, "float32")
    return time.perf_counter() - start


def last_logits(engine: Any) -> torch.Tensor:
    ids = torch.tensor([engine.prompt_for(QUESTION).input_ids])
    with torch.inference_mode():
        if engine.model.config.is_encoder_decoder:
            start = torch.tensor([[engine.model.config.decoder_start_token_id]])
            return engine.model(input_ids=ids, decoder_input_ids=start).logits[0, -1]
        return engine.model(input_ids=ids).logits[0, -1]


def measure(name: str, tokens: int, rounds: int) -> str:
    engine = load_engine(str(MODELS[name]()), device="cpu")
    step_bytes = bytes_per_step(engine)
    ours: dict[str, list[float]] = {"rows": [], "columns": []}
    theirs: dict[str, list[float]] = {"rows": [], "columns": []}
    relaying = []
    rows(engine.model)
    reference = last_logits(engine)
    relaying.append(columns(engine.model))
    difference = float((last_logits(engine) - reference).abs().max() / reference.abs().max())
    engine.reply(QUESTION, fixed_length(engine, 4))  # warm-up
    for _ in range(rounds):
        for layout in ("rows", "columns"):
            if layout == "rows":
                rows(engine.model)
            else:
                relaying.append(columns(engine.model))
            if hasattr(engine, "forget_conversation"):  # each reply runs its whole prompt
                engine.forget_conversation()
            ours[layout].append(zhbench_ms(engine, tokens))
            plain = generate_ms(engine, tokens)
            if plain is not None:
                theirs[layout].append(plain)
    mine = {layout: statistics.median(values) for layout, values in ours.items()}
    plain_cells = [f"{statistics.median(theirs[k]):.1f}" if theirs[k] else "—" for k in ("rows", "columns")]
    return (
        f"| {name} | {step_bytes / 1e6:.0f} | {mine['rows']:.1f} | {mine['columns']:.1f} | "
        f"{mine['columns'] / mine['rows']:.2f} | {plain_cells[0]} | {plain_cells[1]} | "
        f"{step_bytes / mine['rows'] / 1e6:.1f} → {step_bytes / mine['columns'] / 1e6:.1f} | "
        f"{statistics.median(relaying):.2f} s | {difference:.0e} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--models", nargs="*", default=list(MODELS), choices=list(MODELS))
    args = parser.parse_args()
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, {args.tokens} tokens, median of "
        f"{args.rounds} rounds"
    )
    print(
        "| model | weights read per token (MB) | zhbench rows ms/tok | zhbench columns ms/tok | columns/rows | "
        "generate() rows | generate() columns | GB/s | re-laying | logits differ (max, relative) |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name in args.models:
        print(in_fresh_thread(measure, name, args.tokens, args.rounds), flush=True)


if __name__ == "__main__":
    main()
