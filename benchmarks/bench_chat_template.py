"""The chat-template family at Qwen2.5-0.5B-Instruct's real shape: decode speed against ``generate()`` and
the memory-bandwidth floor, and time to first token late in a long conversation.

The model is Qwen2.5-0.5B-Instruct's published ``config.json`` (24 layers of width 896, 14 query and 2
key/value heads, a 151,936-token vocabulary, embedding and head tied) with random weights, and the real
Qwen2 tokenizer from ``../shared/data/chat/qwen2-tokenizer/`` where it is present (else the stand-in's own).
Measured in one run, interleaved, for fp32 and bf16:

- decode: zhbench's greedy reply streamed through ``ReplyStream`` against one ``model.generate()`` call
  making the same number of tokens from the same prompt; the ratio is zhbench's time over generate()'s
  (target ≤ 1.0);
- floor: the time one token needs to read every weight once at the bandwidth of a large in-memory copy
  measured here (target: decode ≤ 1.5× that);
- turns: time to first token of turn 30 of a conversation over that of turn 1 (target ≤ 1.3), the key/value
  cache of each turn carried to the next.

    python benchmarks/bench_chat_template.py [--tokens 32] [--rounds 3] [--turns 30] [--static-cache]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch

from zhbench.engines.registry import load_engine
from zhbench.engines.standins.chat_template import random_qwen2_state, write_chat_template_standin
from zhbench.engines.standins.common import save_weights
from zhbench.workbench.session.fresh_thread import in_fresh_thread

MODELS = Path(__file__).resolve().parent / "models"
QWEN2_TOKENIZER = Path(__file__).resolve().parents[2] / "shared" / "data" / "chat" / "qwen2-tokenizer"
QUESTION = "请用三句话介绍一下长城的历史。"
#: Qwen2.5-0.5B-Instruct's config.json, as published (the ids are the real tokenizer's)
QWEN25_05B = {
    "architectures": ["Qwen2ForCausalLM"],
    "model_type": "qwen2",
    "hidden_act": "silu",
    "hidden_size": 896,
    "intermediate_size": 4864,
    "num_hidden_layers": 24,
    "num_attention_heads": 14,
    "num_key_value_heads": 2,
    "max_position_embeddings": 32768,
    "max_window_layers": 21,
    "rms_norm_eps": 1e-06,
    "rope_theta": 1000000.0,
    "sliding_window": 32768,
    "use_sliding_window": False,
    "tie_word_embeddings": True,
    "torch_dtype": "bfloat16",
    "vocab_size": 151936,
    "bos_token_id": 151643,
    "eos_token_id": 151645,
    "attention_dropout": 0.0,
    "initializer_range": 0.02,
}


def real_shape_model() -> Path:
    """The stand-in folder with Qwen2.5-0.5B-Instruct's shape, written once into ``benchmarks/models``."""
    folder = MODELS / "qwen2.5-0.5b-shape"
    if (folder / "model.safetensors").is_file():
        return folder
    tokenizer = str(QWEN2_TOKENIZER) if QWEN2_TOKENIZER.is_dir() else None
    write_chat_template_standin(folder, tokenizer=tokenizer)
    config = dict(QWEN25_05B)
    if tokenizer is None:  # the trained tokenizer's vocabulary and ids, the real shape otherwise
        small = json.loads((folder / "config.json").read_text(encoding="utf-8"))
        config |= {key: small[key] for key in ("vocab_size", "bos_token_id", "eos_token_id")}
    (folder / "config.json").write_text(json.dumps(config, indent=2), encoding="utf-8")
    save_weights(random_qwen2_state(config), folder, "safetensors")
    return folder


def copy_bandwidth() -> float:
    """Bytes/s of a 512 MiB in-memory copy (read and write both counted), the best of twenty: on this shared
    machine single copies range from 20 to 35 GB/s, and the floor takes the best seen."""
    source = torch.ones(128 * 1024 * 1024)
    target = torch.empty_like(source)
    best = float("inf")
    for _ in range(20):
        start = time.perf_counter()
        target.copy_(source)
        best = min(best, time.perf_counter() - start)
    return 2 * source.numel() * source.element_size() / best


def load_cpu(folder: Path, dtype: str) -> Any:
    return load_engine(str(folder), device="cpu", dtype=dtype)


def zhbench_decode(engine: Any, params: Any) -> tuple[int, float, float]:
    """One greedy reply through ``ReplyStream``: (new tokens, seconds after the first token, ttft)."""
    engine.forget_conversation()
    stream = engine.start_reply([{"role": "user", "content": QUESTION}], params)
    for _ in stream:
        pass
    stats = stream.result.stats
    return stats.new_tokens, stats.total_s - stats.ttft_s, stats.ttft_s


def generate_decode(
    engine: Any, input_ids: torch.Tensor, tokens: int, cache: str | None = None
) -> tuple[float, float]:
    """``generate()`` greedy for exactly ``tokens`` tokens: (seconds after the first token, first token);
    ``cache="static"`` with transformers' static key/value cache instead of its dynamic one."""
    kwargs = {"attention_mask": torch.ones_like(input_ids), "do_sample": False, "pad_token_id": 0}
    if cache is not None:
        kwargs["cache_implementation"] = cache
    with torch.inference_mode():
        start = time.perf_counter()
        engine.model.generate(input_ids=input_ids, max_new_tokens=1, min_new_tokens=1, **kwargs)
        first = time.perf_counter() - start
        start = time.perf_counter()
        engine.model.generate(input_ids=input_ids, max_new_tokens=tokens, min_new_tokens=tokens, **kwargs)
        whole = time.perf_counter() - start
    return whole - first, first


def turn_ttfts(engine: Any, params: Any, turns: int) -> list[tuple[float, int, int]]:
    """Each turn of one conversation, each reply fed back as the template makes it: (time to first token,
    prompt tokens run through the model, prompt tokens in all)."""
    engine.forget_conversation()
    history: list[dict[str, str]] = []
    measured = []
    for turn in range(turns):
        history.append({"role": "user", "content": f"第{turn + 1}个问题：{QUESTION}"})
        reply = engine.reply(history, params)
        measured.append((reply.stats.ttft_s, reply.stats.prompt_tokens, len(reply.prompt.input_ids)))
        history.append({"role": "assistant", "content": reply.history_content})
    return measured


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--turns", type=int, default=30)
    parser.add_argument(
        "--static-cache", action="store_true", help="also time generate() with transformers' static cache"
    )
    args = parser.parse_args()
    # Every torch call runs on a thread that ends with it, as the app runs loads and replies: a thread left
    # holding an idle OpenMP team (the main thread, had generate() run there) slows every other thread's
    # team, and so the replies measured against it (see workbench/session/fresh_thread.py).
    folder = in_fresh_thread(real_shape_model)
    bandwidth = in_fresh_thread(copy_bandwidth)
    threads = torch.get_num_threads()
    print(f"torch {torch.__version__}, {threads} threads, copy bandwidth {bandwidth / 1e9:.1f} GB/s at the start")
    print(f"tokenizer: {'real Qwen2' if QWEN2_TOKENIZER.is_dir() else 'trained stand-in'}; {args.tokens} new tokens")
    print("| dtype | generate() ms/tok | zhbench ms/tok | ratio | floor ms/tok | zhbench/floor | ttft turn 1 (fed) | "
          f"ttft turn {args.turns} (fed of prompt) | turn {args.turns}/1 |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for dtype in ("float32", "bfloat16"):
        engine = in_fresh_thread(load_cpu, folder, dtype)
        params = engine.presets()["greedy"].with_overrides({"max_new_tokens": args.tokens})
        input_ids = torch.tensor([engine.prompt_for([{"role": "user", "content": QUESTION}], params).input_ids])
        weight_bytes = sum(p.numel() * p.element_size() for p in engine.model.parameters())
        zhbench_decode(engine, params)  # warm up
        ours, theirs, static = [], [], []
        for _ in range(args.rounds):
            tokens, seconds, _ = zhbench_decode(engine, params)
            ours.append(seconds / max(tokens - 1, 1))
            seconds, _ = in_fresh_thread(generate_decode, engine, input_ids, tokens)
            theirs.append(seconds / max(tokens - 1, 1))
            if args.static_cache:
                seconds, _ = in_fresh_thread(generate_decode, engine, input_ids, tokens, "static")
                static.append(seconds / max(tokens - 1, 1))
        mine, plain = statistics.median(ours), statistics.median(theirs)
        if static:
            print(f"{dtype}: generate() with the static cache {statistics.median(static) * 1e3:.1f} ms/tok")
        bandwidth = max(bandwidth, in_fresh_thread(copy_bandwidth))  # measured again beside each dtype's runs
        floor = weight_bytes / bandwidth
        (first, fed_first, _), *_, (last, fed_last, prompt_last) = in_fresh_thread(
            turn_ttfts, engine, params, args.turns
        )
        print(
            f"| {dtype} | {plain * 1e3:.1f} | {mine * 1e3:.1f} | {mine / plain:.2f} | {floor * 1e3:.1f} | "
            f"{mine / floor:.2f} | {first * 1e3:.0f} ms ({fed_first}) | {last * 1e3:.0f} ms ({fed_last} of "
            f"{prompt_last}) | {last / first:.2f} |"
        )
        del engine


if __name__ == "__main__":
    main()
