"""EVA2.0 on zhbench's own model: what the key/value cache, the streaming path and the loader cost.

Random-weight checkpoints in the published layout (``write_random_checkpoint``), on the CPU:

* beam-sample decoding (4 beams): zhbench's reply (transformers 4.x's algorithm on the key/value cache)
  against transformers 5's ``generate()`` with ``use_cache=False`` (what upstream's code fell back to on
  newer transformers, where its cache went unused) and with the cache, interleaved;
* streaming: the ``sample`` preset through ``ReplyStream`` against a plain one-beam ``generate()``;
* loading an EVA2.0-base-sized fp16 ``pytorch_model.bin`` as float32: zhbench's loader against
  ``torch.load`` without memory mapping into a model built in float32 (two full copies), each in a
  fresh process, peak resident memory as the kernel reports it.

    python benchmarks/bench_eva2.py [--tokens 64] [--rounds 3] [--skip-load]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch

from zhbench.engines.families.eva2.engine import eva2_defaults
from zhbench.engines.registry import load_engine
from zhbench.engines.standins.eva2 import write_random_checkpoint

ROOT = Path(__file__).resolve().parents[1]
QUESTION = [{"role": "user", "content": "你好，今天天气怎么样？我们明天去北京吧。"}]
DECODING_SIZES = {"d_model": 256, "d_ff": 1024, "d_kv": 64, "num_heads": 4, "num_layers": 6, "num_decoder_layers": 6}
BASE_SIZES = {"d_model": 768, "d_ff": 3072, "d_kv": 64, "num_heads": 12, "num_layers": 12, "num_decoder_layers": 12}

LOADERS = {
    "zhbench": (
        "from engines.registry import load_engine; engine = load_engine({folder!r}, family='eva2', device='cpu')"
    ),
    "naive": (
        "import torch, json; from engines.families.eva2.model import EvaForConditionalGeneration, eva_config; "
        "state = torch.load({folder!r} + '/pytorch_model.bin', weights_only=True); "
        "model = EvaForConditionalGeneration(eva_config(json.load(open({folder!r} + '/config.json')))); "
        "model.load_state_dict({{k: v.float() for k, v in state.items()}}, strict=False)"
    ),
    "imports only": "import torch, transformers, engines.eva_model",
}


def beam_sample_rate(model, input_ids: torch.Tensor, tokens: int, *, use_cache: bool) -> float:
    settings = eva2_defaults()
    start = time.perf_counter()
    with torch.inference_mode():
        out = model.generate(
            input_ids,
            do_sample=True,
            num_beams=settings.num_beams,
            temperature=settings.temperature,
            top_k=settings.top_k,
            top_p=settings.top_p,
            length_penalty=settings.length_penalty,
            repetition_penalty=settings.repetition_penalty,
            no_repeat_ngram_size=settings.no_repeat_ngram_size,
            encoder_no_repeat_ngram_size=settings.encoder_no_repeat_ngram_size,
            max_new_tokens=tokens,
            min_new_tokens=tokens,
            use_cache=use_cache,
        )
    return (out.shape[1] - 1) / (time.perf_counter() - start)


def plain_sample_rate(model, input_ids: torch.Tensor, tokens: int) -> float:
    start = time.perf_counter()
    with torch.inference_mode():
        out = model.generate(
            input_ids, do_sample=True, temperature=0.7, top_k=0, top_p=0.9, repetition_penalty=1.6,
            no_repeat_ngram_size=3, encoder_no_repeat_ngram_size=3, max_new_tokens=tokens, min_new_tokens=tokens,
        )  # fmt: skip
    return (out.shape[1] - 1) / (time.perf_counter() - start)


def engine_rate(engine, tokens: int, preset: str) -> float:
    """Tokens/s of one zhbench reply with a preset, every piece taken from ``ReplyStream``."""
    params = engine.presets()[preset].with_overrides({"max_new_tokens": tokens})
    stream = engine.start_reply(QUESTION, params)
    for _ in stream:
        pass
    stats = stream.result.stats
    return stats.new_tokens / stats.total_s


def memory_mb(code: str) -> tuple[float, float, float]:
    """Peak resident memory, anonymous memory once done (MB) and wall time of ``code`` in a fresh interpreter.

    The peak is the kernel's ``VmHWM`` of the new process (``ru_maxrss`` would carry this process's
    own peak across ``exec``); it counts the pages of a memory-mapped file being read, which the
    kernel can drop. ``RssAnon`` is what the process itself holds.
    """
    probe = f"import re, time; t = time.perf_counter(); {code}; " + (
        "status = open('/proc/self/status').read(); "
        "kb = [int(re.search(key + r':\\s+(\\d+)', status).group(1)) for key in ('VmHWM', 'RssAnon')]; "
        "print(kb[0] / 1024, kb[1] / 1024, time.perf_counter() - t)"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT, check=True)
    peak, anonymous, seconds = result.stdout.split()
    return float(peak), float(anonymous), float(seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--skip-load", action="store_true", help="leave out the EVA2.0-base-sized loading test")
    args = parser.parse_args()
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch) / "eva-decoding"
        write_random_checkpoint(folder, DECODING_SIZES)
        engine = load_engine(str(folder), family="eva2", device="cpu")
        prompt = torch.tensor([engine.prompt_for(QUESTION).input_ids])
        params = sum(p.numel() for p in engine.model.parameters())
        print(f"decoding model: {params / 1e6:.1f} M parameters, prompt {prompt.shape[1]} tokens, {args.tokens} new")
        rates: dict[str, list[float]] = {"zhbench": [], "no cache": [], "cache": [], "plain": [], "streamed": []}
        for round_index in range(args.rounds + 1):  # the first round warms up and is not counted
            measured = {
                "zhbench": engine_rate(engine, args.tokens, "beam-sample"),
                "cache": beam_sample_rate(engine.model, prompt, args.tokens, use_cache=True),
                "no cache": beam_sample_rate(engine.model, prompt, args.tokens, use_cache=False),
                "plain": plain_sample_rate(engine.model, prompt, args.tokens),
                "streamed": engine_rate(engine, args.tokens, "sample"),
            }
            if round_index:
                for name, rate in measured.items():
                    rates[name].append(rate)
        median = {name: statistics.median(values) for name, values in rates.items()}
        print(f"beam-sample, 4 beams: zhbench {median['zhbench']:.1f} tok/s, generate without cache "
              f"{median['no cache']:.1f} tok/s (ratio {median['zhbench'] / median['no cache']:.2f}), "
              f"generate with cache {median['cache']:.1f} tok/s")  # fmt: skip
        print(f"one-beam sampling: plain generate {median['plain']:.1f} tok/s, zhbench streaming "
              f"{median['streamed']:.1f} tok/s, ratio {median['streamed'] / median['plain']:.2f}")  # fmt: skip

        if not args.skip_load:
            base = Path(scratch) / "eva-base"
            write_random_checkpoint(base, BASE_SIZES)
            size = (base / "pytorch_model.bin").stat().st_size / 1e6
            print(f"loading an EVA2.0-base-sized pytorch_model.bin ({size:.0f} MB, fp16) as float32:")
            for name, code in LOADERS.items():
                peak, anonymous, seconds = memory_mb(code.format(folder=str(base)))
                print(f"  {name:<13} peak RSS {peak:6.0f} MB, anonymous after {anonymous:6.0f} MB, {seconds:5.1f} s")


if __name__ == "__main__":
    main()
