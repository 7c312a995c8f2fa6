"""The memory-fit estimate (``engines/hub/fit.py``) against the measured peak of real loads on the CPU.

Each model is loaded in a fresh process with ``load_engine(path, device="cpu")`` and answers one message
long enough to fill its context (8 new tokens), so every weight page is touched and the key/value cache
is as big as the estimate counts it. Measured: the kernel's peak RSS (``VmHWM``) minus the RSS after the
imports (``VmRSS``); estimated: weights + cache at the model's context + ``CPU_OVERHEAD_BYTES``.
The last column is what the measurement leaves for the overhead (measured minus weights and cache).

    python benchmarks/bench_fit.py [--models NAME ...]

Models: the tiny stand-ins and the published shapes of ``benchmarks/real_models.py`` (written on demand).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from real_models import REAL_MODELS, tiny  # noqa: E402

from zhbench.engines.api import LoadOptions  # noqa: E402
from zhbench.engines.hub.fit import estimate_need  # noqa: E402
from zhbench.engines.local.footprint import CPU_OVERHEAD_BYTES  # noqa: E402
from zhbench.engines.registry import family_spec, resolve  # noqa: E402

PROBE = """
import json, os, sys
os.environ['RWKV_JIT_ON'] = '0'
sys.path.insert(0, {root!r})
import torch, transformers
from zhbench.engines.registry import load_engine
from zhbench.engines.types import GenerationParams
def status(name):
    for line in open('/proc/self/status'):
        if line.startswith(name + ':'):
            return int(line.split()[1]) * 1024
before = status('VmRSS')
engine = load_engine({path!r}, device='cpu')
params = engine.presets()[next(iter(engine.presets()))].with_overrides({{'max_new_tokens': 8, 'seed': 0}})
engine.reply([{{'role': 'user', 'content': '你好，今天天气怎么样？' * 400}}], params)
print(json.dumps({{'before': before, 'peak': status('VmHWM')}}))
"""


def measure(path: Path) -> int:
    code = PROBE.format(root=str(ROOT), path=str(path))
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    return int(result["peak"] - result["before"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default = ["tiny:gpt2-dialogbot", "gpt2-dialogbot-base-chinese", "chat-DialoGPT-small-zh", "RWKV-4-430M"]
    parser.add_argument("--models", nargs="*", default=default)
    args = parser.parse_args()
    print(f"CPU_OVERHEAD_BYTES = {CPU_OVERHEAD_BYTES / 2**20:.0f} MiB")
    print()
    print("| model | weights (MB) | cache (MB) at positions | estimate (MB) | measured peak above imports (MB) | "
          "error | overhead seen (MB) |")  # fmt: skip
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name in args.models:
        path = tiny(name.removeprefix("tiny:")) if name.startswith("tiny:") else REAL_MODELS[name].path()
        path, family = resolve(str(path))
        need = estimate_need(path, family_spec(family), LoadOptions(device="cpu"))
        measured = measure(path)
        error = (need.total_bytes - measured) / measured
        seen = measured - need.weights_bytes - need.cache_bytes  # what the constant overhead stands for
        print(
            f"| {name} | {need.weights_bytes / 1e6:.0f} | {need.cache_bytes / 1e6:.1f} at {need.context} | "
            f"{need.total_bytes / 1e6:.0f} | {measured / 1e6:.0f} | {error:+.1%} | {seen / 1e6:.0f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
