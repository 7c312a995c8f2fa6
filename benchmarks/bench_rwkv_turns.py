"""Time per turn of one RWKV-4 chat: the carried state against re-feeding the whole history each turn.

One chat of ``--turns`` turns is run by two engines loaded from the same stand-in, interleaved turn by
turn: ``carried`` continues its own state (each turn feeds only the new message), ``re-fed`` forgets its
state before every turn, so the whole history goes through the model again (what a stateless chat
loop, or a transformer without a KV cache kept between turns, would do). Both decode greedily with a
fixed reply length (a reply may end sooner at its blank line). Re-fed replies enter the state as text, so the
two may differ in their tokens but not in their cost. "First token" is the time to the first reply token:
the feed of the turn's prompt. The time per turn should stay flat for ``carried``.

    python benchmarks/bench_rwkv_turns.py [--turns 30] [--reply-tokens 32] [--n-embd 256] [--n-layer 6] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("RWKV_JIT_ON", "0")
os.environ.setdefault("RWKV_CUDA_ON", "0")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch

from zhbench.engines.families.rwkv4.engine import Rwkv4Engine
from zhbench.engines.registry import load_engine
from zhbench.engines.standins.rwkv4 import random_rwkv4_state, write_rwkv4_standin

MODELS = Path(__file__).resolve().parent / "models"
REPORTED_TURNS = (1, 2, 10, 20, 30)


def timed_reply(engine: Any, history: list[dict[str, str]], params: Any) -> tuple[float, Any]:
    start = time.perf_counter()
    reply = engine.reply(history, params)
    return time.perf_counter() - start, reply


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=30)
    parser.add_argument("--reply-tokens", type=int, default=32)
    parser.add_argument("--n-embd", type=int, default=256)
    parser.add_argument("--n-layer", type=int, default=6)
    parser.add_argument("--rounds", type=int, default=3, help="whole chats run; each figure is their median")
    args = parser.parse_args()
    torch.set_num_threads(1)

    folder = MODELS / f"rwkv4-{args.n_embd}x{args.n_layer}"
    if not folder.is_dir():
        write_rwkv4_standin(folder)
        checkpoint = next(folder.glob("*.pth"))
        vocab_size = torch.load(checkpoint, weights_only=True)["emb.weight"].shape[0]
        torch.save(random_rwkv4_state(vocab_size, n_embd=args.n_embd, n_layer=args.n_layer), checkpoint)
    carried = load_engine(str(folder), extra={"strategy": "cpu fp32"})
    refed = load_engine(str(folder), extra={"strategy": "cpu fp32"})
    assert isinstance(refed, Rwkv4Engine)
    params = carried.default_params().with_overrides({"greedy": True, "max_new_tokens": args.reply_tokens})

    print(
        f"torch {torch.__version__}, 1 thread, RWKV-4 stand-in n_embd {args.n_embd}, {args.n_layer} layers, "
        f"strategy cpu fp32, greedy, {args.reply_tokens}-token replies, one chat of {args.turns} turns"
    )
    rows: dict[int, list[tuple[Any, Any, float, float]]] = {}
    for _ in range(args.rounds):
        carried.forget_conversation()  # each round is the same chat from its start
        history: list[dict[str, str]] = []
        for turn in range(1, args.turns + 1):
            history.append({"role": "user", "content": f"第{turn}个问题：今天天气怎么样，我们明天去哪里？"})
            carried_s, reply = timed_reply(carried, history, params)
            refed.forget_conversation()
            refed_s, again = timed_reply(refed, history, params)
            rows.setdefault(turn, []).append((reply.stats, again.stats, carried_s, refed_s))
            history.append({"role": "assistant", "content": reply.text})

    print(
        "| turn | fed tokens: carried | fed tokens: re-fed | first token: carried (s) | first token: re-fed (s) "
        "| turn: carried (s) | turn: re-fed (s) | turn time re-fed / carried |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for turn, measured in rows.items():
        if turn not in REPORTED_TURNS and turn != args.turns:
            continue
        carried_stats, refed_stats = measured[0][0], measured[0][1]
        ttft_c = statistics.median(m[0].ttft_s for m in measured)
        ttft_r = statistics.median(m[1].ttft_s for m in measured)
        turn_c = statistics.median(m[2] for m in measured)
        turn_r = statistics.median(m[3] for m in measured)
        print(
            f"| {turn} | {carried_stats.prompt_tokens} | {refed_stats.prompt_tokens} | {ttft_c:.3f} | {ttft_r:.3f} | "
            f"{turn_c:.3f} ({carried_stats.new_tokens} tok) | {turn_r:.3f} ({refed_stats.new_tokens} tok) | "
            f"{turn_r / turn_c:.1f} |"
        )


if __name__ == "__main__":
    main()
