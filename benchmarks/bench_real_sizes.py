"""Speed at the seed models' real sizes: decoding against upstream and the memory-bandwidth floor, turn 30
against turn 1, two models at once, and memory while loading.

Models: random weights at the published configurations (``benchmarks/real_models.py`` writes them on demand).
Every reply is greedy with a fixed length: the end token and the families' text stop rules are ignored,
as serving benchmarks' ``ignore_eos`` does, so every way of decoding does the same number of steps.

decode   ms per generated token after the first, for zhbench's engine (``engine.reply``) against
         (a) the upstream loop as the model's own code runs it (gpt2-dialogbot: ``interact.py`` re-runs the
             whole sequence every step; RWKV-4: ChatRWKV's ``model.forward(tokens, state)`` loop; EVA2.0:
             ``generate()`` without the key/value cache, as its code ran on transformers >= 4.27; the
             others' model cards call ``generate()``, so (a) is (b)),
         (b) plain ``model.generate()`` (decode time = time for N tokens minus time for 1, over N - 1),
         (c) the floor: the bytes of weights one decoding step reads, over the memory bandwidth measured
             in the same run (``torch.sum`` over 1 GiB, torch's own threads).
turns    one chat of 30 turns (the same messages, fixed-length replies): time to first token and the
         whole turn at turns 1, 10, 20, 30, for zhbench (key/value cache or RWKV state carried from turn
         to turn) against the same engine made to encode the whole history at each turn.
ab       an A/B turn: both engines answering at once (each reply thread with its share of the cores)
         against the slower one alone and both one after the other; and both at once with every reply
         using all of torch's threads (no share), for reference.
memory   peak RSS and peak anonymous memory while loading each model in a fresh process, against the
         weights' size in memory; the imports alone, for reference.

    python benchmarks/bench_real_sizes.py [--sections decode,turns,ab,memory] [--models NAME ...]
                                     [--tokens 32] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("RWKV_JIT_ON", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch
from real_models import REAL_MODELS

from zhbench.engines.local import token_engine
from zhbench.engines.local.cpu_share import CpuShare
from zhbench.engines.registry import load_engine
from zhbench.workbench.session.fresh_thread import in_fresh_thread

QUESTION = [{"role": "user", "content": "你好，今天天气怎么样？我们明天去北京吧。"}]
MESSAGES = ["你好，今天天气怎么样？", "我们明天去北京吧，你觉得呢？", "为什么你喜欢这个电影？", "谢谢你，再见！"]


def out(line: str = "") -> None:
    print(line, flush=True)


def fixed_length(engine: Any, tokens: int) -> Any:
    """Plain greedy params of exactly ``tokens`` tokens (no penalties: the same work as the plain
    ``generate()`` and upstream loops here), the engine's end token and stop rule switched off."""
    engine.end_ids = frozenset()
    start_generation = engine.start_generation

    def without_stop_rule(*args: Any) -> Any:
        generation = start_generation(*args)
        generation.stop_rule = lambda text: None
        return generation

    engine.start_generation = without_stop_rule
    plain = {"greedy": True, "num_beams": 1, "max_new_tokens": tokens, "repetition_penalty": 1.0}
    if engine.family == "rwkv4":
        plain.update(presence_penalty=0.0, frequency_penalty=0.0)
    else:
        plain.update(no_repeat_ngram_size=0)
    return engine.default_params().with_overrides(plain)


def median_of(rounds: int, measure: Callable[[], float]) -> float:
    return statistics.median(measure() for _ in range(rounds))


# --- decode -----------------------------------------------------------------------------------------


def memory_bandwidth() -> float:
    """Bytes per second torch reads summing 1 GiB of float32 (best of 5)."""
    data = torch.ones(2**28)
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        data.sum()
        best = min(best, time.perf_counter() - start)
    return data.numel() * 4 / best


CROSS_KEYS_VALUES = re.compile(r"^decoder\.block\.\d+\.layer\.1\.EncDecAttention\.[kv]\.weight$")


def bytes_per_step(engine: Any) -> int:
    """Weight bytes one decoding step reads: every weight but the input embedding's other rows and, for
    encoder-decoders, the encoder and the cross-attention keys and values (both run once per reply).
    The key/value cache and activations are left out."""
    if engine.family == "rwkv4":
        return sum(t.numel() * t.element_size() for name, t in engine.model.w.items() if name != "emb.weight")
    model = engine.model
    encoder_decoder = bool(getattr(model.config, "is_encoder_decoder", False))
    total = 0
    for name, parameter in model.named_parameters():  # shared (tied) weights counted once
        if encoder_decoder and (not name.startswith(("decoder.", "lm_head.")) or CROSS_KEYS_VALUES.search(name)):
            continue
        if name.endswith("wpe.weight"):
            continue
        total += parameter.numel() * parameter.element_size()
    return total


def timed_tokens(step: Callable[[], None], first: Callable[[], None], tokens: int) -> float:
    """ms per token after the first: ``first()`` makes the first token, ``step()`` each later one."""
    first()
    start = time.perf_counter()
    for _ in range(tokens - 1):
        step()
    return (time.perf_counter() - start) * 1000 / (tokens - 1)


def upstream_loop_ms(engine: Any, tokens: int) -> float | None:
    """(a) for the families whose upstream code is not a plain ``generate()`` call."""
    if engine.family == "gpt2-dialogbot":  # interact.py: the whole sequence through the model every step
        ids = list(engine.prompt_for(QUESTION).input_ids)

        def step() -> None:
            with torch.inference_mode():
                logits = engine.model(input_ids=torch.tensor([ids])).logits[0, -1]
            ids.append(int(torch.argmax(logits)))

        return timed_tokens(step, step, tokens)
    if engine.family == "rwkv4":  # ChatRWKV: out, state = model.forward(tokens, state)
        state: list[Any] = [None, None]
        prompt = engine.pipeline.encode("User: 你好，今天天气怎么样？\n\nBot:")

        def first() -> None:
            state[0], state[1] = engine.model.forward(prompt, None)

        def step() -> None:
            token = int(torch.argmax(state[0]))
            state[0], state[1] = engine.model.forward([token], state[1])

        return timed_tokens(step, first, tokens)
    if engine.family == "eva2":  # upstream's cache went unused on transformers >= 4.27
        return generate_ms(engine, tokens, use_cache=False)
    return None


def generate_ms(engine: Any, tokens: int, *, use_cache: bool = True) -> float | None:
    """(b) ``generate()``: (time for ``tokens`` - time for 1) / (tokens - 1), greedy, no end token."""
    if engine.family == "rwkv4":
        return None
    ids = torch.tensor([engine.prompt_for(QUESTION).input_ids])

    def run(count: int) -> float:
        start = time.perf_counter()
        with torch.inference_mode():
            engine.model.generate(
                input_ids=ids,
                attention_mask=torch.ones_like(ids),
                do_sample=False,
                num_beams=1,
                max_new_tokens=count,
                min_new_tokens=count,
                use_cache=use_cache,
                pad_token_id=0,
            )
        return time.perf_counter() - start

    return (run(tokens) - run(1)) * 1000 / (tokens - 1)


def zhbench_ms(engine: Any, tokens: int) -> float:
    reply = engine.reply(QUESTION, fixed_length(engine, tokens))
    assert reply.stats.new_tokens == tokens and reply.stats.ttft_s is not None
    return (reply.stats.total_s - reply.stats.ttft_s) * 1000 / (tokens - 1)


def decode_section(names: list[str], tokens: int, rounds: int) -> None:
    out("## decode: ms per generated token after the first (median of rounds, interleaved)")
    out()
    out(
        "| model | weights read per step (MB) | zhbench | (a) upstream loop | (b) generate() | (c) floor | "
        "zhbench / (a) | zhbench / (b) | zhbench / (c) |"
    )
    out("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name in names:
        engine = load_engine(str(REAL_MODELS[name].path()), device="cpu")
        step_bytes = bytes_per_step(engine)
        results: dict[str, list[float]] = {"zhbench": [], "a": [], "b": [], "c": []}
        zhbench_ms(engine, 4)  # warm-up
        for _ in range(rounds):
            results["zhbench"].append(zhbench_ms(engine, tokens))
            for key, measure in (("a", upstream_loop_ms), ("b", generate_ms)):
                value = measure(engine, tokens)
                if value is not None:
                    results[key].append(value)
            results["c"].append(step_bytes / memory_bandwidth() * 1000)
        m = {key: statistics.median(values) if values else None for key, values in results.items()}
        if m["a"] is None:
            m["a"] = m["b"]  # the model card's own code is generate()
        cells = ["—" if m[key] is None else f"{m[key]:.1f}" for key in ("zhbench", "a", "b", "c")]
        ratios = ["—" if m[key] is None else f"{m['zhbench'] / m[key]:.2f}" for key in ("a", "b", "c")]
        out(f"| {name} | {step_bytes / 1e6:.0f} | " + " | ".join(cells + ratios) + " |")
        del engine
    out()
    out(
        f"bandwidth (torch.sum over 1 GiB float32, {torch.get_num_threads()} threads): "
        f"{memory_bandwidth() / 1e9:.1f} GB/s"
    )
    out()


# --- turns ------------------------------------------------------------------------------------------


def forget(engine: Any) -> None:
    """Make the engine encode the whole history at its next reply."""
    if hasattr(engine, "forget_conversation"):
        engine.forget_conversation()


def turns_section(names: list[str], tokens: int, turns: int = 30) -> None:
    out(f"## turns: one chat of {turns} turns, {tokens}-token replies, turn by turn interleaved")
    out()
    out(
        "| model | turn | prompt tokens fed: carried | fed: re-encoded | first token: carried (s) | "
        "first token: re-encoded (s) | turn: carried (s) | turn: re-encoded (s) | carried turn / turn 1 |"
    )
    out("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name in names:
        path = str(REAL_MODELS[name].path())
        carried, fresh = load_engine(path, device="cpu"), load_engine(path, device="cpu")
        params = fixed_length(carried, tokens)
        fixed_length(fresh, tokens)
        histories: dict[str, list[dict[str, str]]] = {"carried": [], "fresh": []}
        first_turn = 0.0
        for turn in range(1, turns + 1):
            row = {}
            for label, engine in (("carried", carried), ("fresh", fresh)):
                history = histories[label]
                history.append({"role": "user", "content": MESSAGES[turn % len(MESSAGES)]})
                if label == "fresh":
                    forget(engine)
                reply = engine.reply(history, params)
                history.append({"role": "assistant", "content": reply.text})
                row[label] = reply.stats
            if turn == 1:
                first_turn = row["carried"].total_s
            if turn in (1, 2, 10, 20, 30):
                c, f = row["carried"], row["fresh"]
                out(
                    f"| {name} | {turn} | {c.prompt_tokens} | {f.prompt_tokens} | {c.ttft_s:.3f} | {f.ttft_s:.3f} | "
                    f"{c.total_s:.3f} | {f.total_s:.3f} | {c.total_s / first_turn:.2f} |"
                )
        del carried, fresh
    out()


# --- ab ---------------------------------------------------------------------------------------------


def ab_section(pair: list[str], tokens: int, rounds: int) -> None:
    engines = [in_fresh_thread(partial(load_engine, device="cpu"), str(REAL_MODELS[name].path())) for name in pair]
    params = [fixed_length(engine, tokens) for engine in engines]
    shared = token_engine.CPU_SHARE

    class NoShare(CpuShare):
        def apply(self) -> int:
            return 0

    def alone(index: int) -> float:
        start = time.perf_counter()
        in_fresh_thread(engines[index].reply, QUESTION, params[index])
        return time.perf_counter() - start

    def at_once(share: CpuShare) -> float:
        token_engine.CPU_SHARE = share
        threads = [threading.Thread(target=e.reply, args=(QUESTION, p)) for e, p in zip(engines, params, strict=True)]
        start = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        token_engine.CPU_SHARE = shared
        return time.perf_counter() - start

    ways: dict[str, Callable[[], float]] = {
        "A alone": lambda: alone(0),
        "B alone": lambda: alone(1),
        "one after the other": lambda: alone(0) + alone(1),
        "at once, cores shared": lambda: at_once(shared),
        "at once, no share": lambda: at_once(NoShare(shared.cores)),
    }
    times: dict[str, list[float]] = {way: [] for way in ways}
    alone(0), alone(1)  # warm-up
    for _ in range(rounds):
        for way, measure in ways.items():
            times[way].append(measure())
    m = {way: statistics.median(values) for way, values in times.items()}
    slower = max(m["A alone"], m["B alone"])
    out(
        f"## ab: A = {pair[0]}, B = {pair[1]}, {tokens} tokens each, median of {rounds} interleaved rounds, "
        f"{shared.cores} cores"
    )
    out()
    out("| A/B turn | wall (s) | / slower alone | / one after the other |")
    out("|---|---:|---:|---:|")
    for way, value in m.items():
        out(f"| {way} | {value:.2f} | {value / slower:.2f} | {value / m['one after the other']:.2f} |")
    out()


# --- memory -----------------------------------------------------------------------------------------

MEMORY_PROBE = """
import json, sys, threading, time
peak_anon = 0
def anon():
    for line in open('/proc/self/status'):
        if line.startswith('RssAnon:'):
            return int(line.split()[1]) * 1024
def watch():
    global peak_anon
    while True:
        peak_anon = max(peak_anon, anon())
        time.sleep(0.002)
threading.Thread(target=watch, daemon=True).start()
sys.path.insert(0, {root!r})
import torch, transformers
from zhbench.engines.registry import load_engine
base = anon()
weights = 0
if {path!r}:
    engine = load_engine({path!r}, device='cpu')
    weights = engine.weight_bytes()
time.sleep(0.02)
status = dict(line.split(':', 1) for line in open('/proc/self/status'))
print(json.dumps({{'peak_rss': int(status['VmHWM'].split()[0]) * 1024, 'peak_anon': max(peak_anon, anon()),
                  'imports_anon': base, 'weights': weights}}))
"""


def load_memory(path: str) -> dict[str, int]:
    code = MEMORY_PROBE.format(root=str(Path(__file__).resolve().parents[1]), path=path)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def memory_section(names: list[str]) -> None:
    out("## memory: loading each model in a fresh process (`load_engine(path, device='cpu')`)")
    out()
    out(
        "| model | file (MB) | weights in memory (MB) | peak RSS (MB) | peak anonymous (MB) | "
        "peak anonymous above imports / weights |"
    )
    out("|---|---:|---:|---:|---:|---:|")
    imports = load_memory("")
    out(
        f"| imports only (torch, transformers) | — | — | {imports['peak_rss'] / 1e6:.0f} | "
        f"{imports['peak_anon'] / 1e6:.0f} | — |"
    )
    for name in names:
        folder = REAL_MODELS[name].path()
        size = sum(f.stat().st_size for f in folder.iterdir() if f.suffix in (".bin", ".pth", ".safetensors"))
        m = load_memory(str(folder))
        above = m["peak_anon"] - m["imports_anon"]
        out(
            f"| {name} | {size / 1e6:.0f} | {m['weights'] / 1e6:.0f} | {m['peak_rss'] / 1e6:.0f} | "
            f"{m['peak_anon'] / 1e6:.0f} | {above / m['weights']:.2f} |"
        )
    out()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sections", default="decode,turns,ab,memory")
    parser.add_argument("--models", nargs="*", default=list(REAL_MODELS))
    parser.add_argument("--turn-models", nargs="*", default=["chat-DialoGPT-small-zh", "RWKV-4-430M"])
    parser.add_argument("--pair", nargs=2, default=["chat-DialoGPT-small-zh", "ChatYuan-large-v1"])
    parser.add_argument("--tokens", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    sections = args.sections.split(",")
    out(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {time.strftime('%Y-%m-%d')}")
    out()
    # Each section on a thread of its own, so that the main thread never holds an OpenMP team.
    if "decode" in sections:
        in_fresh_thread(decode_section, args.models, args.tokens, args.rounds)
    if "turns" in sections:
        in_fresh_thread(turns_section, args.turn_models, args.tokens)
    if "ab" in sections:
        in_fresh_thread(ab_section, args.pair, args.tokens, args.rounds)
    if "memory" in sections:
        memory_section(args.models)


if __name__ == "__main__":
    main()
