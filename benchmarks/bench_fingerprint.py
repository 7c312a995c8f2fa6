"""What a model's fingerprint costs: the first load of a model outside the hub caches reads its weights whole
for their sha256 (in the load worker, after the model is loaded); later loads find the digest kept by the
file's size and time.

A weights file of ``--mb`` MiB of random bytes is written to a temporary folder (so it is in the page cache,
as a model's weights are right after their load), and ``path_fingerprint`` is timed the first time and
again. The digest cache goes to a temporary data folder, never the user's.

    python benchmarks/bench_fingerprint.py [--mb 1024] [--runs 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=1024, help="size of the weights file in MiB (default 1024)")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        os.environ["XDG_DATA_HOME"] = str(Path(scratch) / "data")
        from zhbench.workbench.session.identity import fingerprints_path, path_fingerprint

        first, again = [], []
        for run in range(args.runs):
            model = Path(scratch) / f"model-{run}"
            model.mkdir()
            with (model / "model.safetensors").open("wb") as weights:
                for _ in range(args.mb):
                    weights.write(os.urandom(1 << 20))
            started = time.perf_counter()
            path_fingerprint(model)
            first.append(time.perf_counter() - started)
            started = time.perf_counter()
            path_fingerprint(model)
            again.append(time.perf_counter() - started)
        assert fingerprints_path().is_relative_to(scratch)
    median_first, median_again = statistics.median(first), statistics.median(again)
    print(f"weights {args.mb} MiB, {args.runs} runs (medians)")
    print(f"first fingerprint: {median_first:.3f} s ({args.mb / median_first:.0f} MiB/s)")
    print(f"again (kept digest): {median_again * 1000:.2f} ms ({median_first / median_again:.0f}x faster)")


if __name__ == "__main__":
    main()
