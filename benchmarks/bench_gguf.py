"""The gguf family at Qwen2.5-0.5B-Instruct's real shape: llama.cpp's quantized decoding against zhbench's own
float32 path on the same weights, and zhbench's loop against llama.cpp's own ``create_completion``.

The weights are ``bench_chat_template.py``'s stand-in (Qwen2.5-0.5B-Instruct's published ``config.json``, random
weights, the real Qwen2 tokenizer where ``../shared`` has it), converted to GGUF by the stand-in converter
(``engines/standins/gguf.py``, llama.cpp's ``convert_hf_to_gguf.py`` steps) as F32, F16 and Q8_0, and Q4_0
made from the F16 file by llama.cpp's own quantizer (``llama_model_quantize``; not Q4_K_M, whose 256-wide
blocks do not divide this shape's width of 896, so llama.cpp falls back to Q5_0 for half the tensors).
In one run, on the threads torch uses (2 here), for each type:

- decode ms/token of a greedy reply through ``ReplyStream`` (zhbench's gguf family), and of
  ``create_completion`` streamed on a fresh ``Llama`` over the same file and the same ids (llama.cpp's own
  loop): target zhbench/llama.cpp <= 1.1;
- time to first token of a fresh conversation, and what llama.cpp holds (weights + key/value cache);
- against it, the chat-template family at float32 on the same weights: target chat-template/gguf Q8_0 >= 2.5;
- turn 30's time to first token over turn 1's (Q8_0), llama.cpp's cache carried between turns: target <= 1.3.

    python benchmarks/bench_gguf.py [--tokens 32] [--rounds 3] [--turns 30]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_chat_template import MODELS, QUESTION, real_shape_model, turn_ttfts, zhbench_decode

from zhbench.engines.families.gguf.engine import cpu_cores
from zhbench.engines.registry import load_engine
from zhbench.engines.standins.gguf import convert_qwen2
from zhbench.workbench.session.fresh_thread import in_fresh_thread

TYPES = ("f32", "f16", "q8_0", "q4_0")


def gguf_files(folder: Path) -> dict[str, Path]:
    """The real-shape model as one GGUF file per type, written once into ``benchmarks/models``."""
    import llama_cpp

    files = {}
    for kind in TYPES:
        path = MODELS / f"qwen2.5-0.5b-shape-{kind.upper()}.gguf"
        if not path.is_file():
            if kind == "q4_0":
                params = llama_cpp.llama_model_quantize_default_params()
                params.ftype = llama_cpp.LLAMA_FTYPE_MOSTLY_Q4_0
                params.nthread = cpu_cores()
                source = str(files["f16"]).encode()
                if llama_cpp.llama_model_quantize(source, str(path).encode(), params) != 0:
                    raise SystemExit(f"llama_model_quantize failed for {path}")
            else:
                convert_qwen2(folder, path, kind)
        files[kind] = path
    return files


def llama_cpp_decode(path: Path, ids: list[int], tokens: int, threads: int) -> tuple[float, float, int]:
    """``create_completion`` streamed, greedy, on a fresh ``Llama``: (seconds after the first token, time to
    first token, tokens)."""
    from llama_cpp import Llama

    llama = Llama(str(path), n_ctx=8192, n_threads=threads, n_threads_batch=threads, verbose=False)
    try:
        start = time.perf_counter()
        first = None
        count = 0
        for _ in llama.create_completion(ids, max_tokens=tokens, temperature=0.0, stream=True):
            count += 1
            if first is None:
                first = time.perf_counter() - start
        total = time.perf_counter() - start
    finally:
        llama.close()
    assert first is not None
    return total - first, first, count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--turns", type=int, default=30)
    args = parser.parse_args()
    import llama_cpp

    folder = in_fresh_thread(real_shape_model)
    files = gguf_files(folder)
    threads = cpu_cores()
    print(
        f"llama-cpp-python {llama_cpp.__version__}, {threads} threads; "
        f"{args.tokens} new tokens, median of {args.rounds}"
    )
    print(f"llama.cpp system info: {llama_cpp.llama_print_system_info().decode().strip()}")

    rows = []
    turn_line = ""
    header = (
        "| type | file MB | llama.cpp holds MB | create_completion ms/tok | zhbench gguf ms/tok | zhbench/llama.cpp "
        "| chat-template f32 / zhbench gguf | ttft zhbench | ttft create_completion |"
    )
    for kind, path in files.items():
        engine = in_fresh_thread(load_engine, str(path))
        params = engine.presets()["greedy"].with_overrides({"max_new_tokens": args.tokens})
        ids = engine.prompt_for([{"role": "user", "content": QUESTION}], params).input_ids
        in_fresh_thread(zhbench_decode, engine, params)  # warm up
        ours, theirs = [], []
        for _ in range(args.rounds):
            tokens, seconds, ttft = in_fresh_thread(zhbench_decode, engine, params)
            ours.append((seconds / max(tokens - 1, 1), ttft))
            seconds, first, count = in_fresh_thread(llama_cpp_decode, path, ids, tokens, threads)
            theirs.append((seconds / max(count - 1, 1), first))
        mine, plain = statistics.median(t for t, _ in ours), statistics.median(t for t, _ in theirs)
        ttft_mine, ttft_plain = statistics.median(t for _, t in ours), statistics.median(t for _, t in theirs)
        info = engine.describe()
        rows.append((info.dtype, path.stat().st_size, info.weight_bytes, plain, mine, ttft_mine, ttft_plain))
        if kind == "q8_0":
            turns = in_fresh_thread(turn_ttfts, engine, params, args.turns)
            (first_ttft, fed_first, _), (last_ttft, fed_last, prompt_last) = turns[0], turns[-1]
            turn_line = (
                f"Q8_0 turns: ttft turn 1 {first_ttft * 1e3:.0f} ms ({fed_first} fed), turn {args.turns} "
                f"{last_ttft * 1e3:.0f} ms ({fed_last} fed of {prompt_last}): {last_ttft / first_ttft:.2f}x"
            )
        del engine
    # torch last: once its OpenMP runtime has run in a process, llama.cpp's threads compete with it
    reference = in_fresh_thread(lambda: load_engine(str(folder), device="cpu", dtype="float32"))
    greedy = reference.presets()["greedy"].with_overrides({"max_new_tokens": args.tokens})
    in_fresh_thread(zhbench_decode, reference, greedy)  # warm up
    runs = [in_fresh_thread(zhbench_decode, reference, greedy) for _ in range(args.rounds)]
    float32 = statistics.median(seconds / max(tokens - 1, 1) for tokens, seconds, _ in runs)
    float32_ttft = statistics.median(ttft for _, _, ttft in runs)
    print(f"chat-template float32: {float32 * 1e3:.1f} ms/tok, ttft {float32_ttft * 1e3:.0f} ms")
    del reference

    print(header)
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for dtype, size, holds, plain, mine, ttft_mine, ttft_plain in rows:
        print(
            f"| {dtype} | {size / 1e6:.0f} | {holds / 1e6:.0f} | {plain * 1e3:.1f} | {mine * 1e3:.1f} "
            f"| {mine / plain:.2f} | {float32 / mine:.2f} | {ttft_mine * 1e3:.0f} ms | {ttft_plain * 1e3:.0f} ms |"
        )
    print(turn_line)


if __name__ == "__main__":
    main()
