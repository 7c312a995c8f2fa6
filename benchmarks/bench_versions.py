"""This checkout against an older one, side by side in one run: start-up, the command line, decoding, the app.

Every measurement alternates between the two checkouts (older first), each run in a fresh process from
its own checkout (its folder first on ``sys.path``), so both see the same machine at the same time:

- ``zhbench --help`` and ``zhbench models --json`` (empty model caches): wall time of the whole process;
- start to the first painted screen in a real pseudo-terminal (``bench_startup.one_start``);
- decode speed: each checkout's own ``benchmarks/bench_streaming.py`` (tokens/s streamed through zhbench);
- the app with both panes streaming: each checkout's own ``benchmarks/bench_app.py`` (ratio to the engines
  alone, key press to screen while streaming).

    git worktree add /tmp/zhbench-before <commit>
    python benchmarks/bench_versions.py --before /tmp/zhbench-before [--rounds 5] [--skip-app] [--app-size tiny|real]
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import tomllib
from collections.abc import Callable
from pathlib import Path

from bench_startup import one_start

HERE = Path(__file__).resolve().parents[1]


class Checkout:
    """A zhbench source tree, run from its own folder so that its packages shadow any installed ones."""

    def __init__(self, name: str, root: Path) -> None:
        self.name = name
        self.root = root.resolve()
        # ``python -m zhbench`` since the one-package layout; ``python -m workbench`` before it
        self.module = "zhbench" if (self.root / "zhbench" / "__main__.py").exists() else "workbench"
        # its benchmark scripts: benchmarks/ since the rename, bench/ before it
        self.scripts = "benchmarks" if (self.root / "benchmarks").is_dir() else "bench"
        home = Path(tempfile.mkdtemp(prefix=f"zhbench-{name}-"))
        self.env = {
            **os.environ,
            # its families are found through its own entry points (the installed zhbench's name other modules)
            "PYTHONPATH": os.pathsep.join([str(self.root), str(own_entry_points(self.root, home / "meta"))]),
            "XDG_CONFIG_HOME": str(home / "config"),
            "XDG_DATA_HOME": str(home / "data"),
            "XDG_CACHE_HOME": str(home / "cache"),
            "HF_HUB_CACHE": str(home / "hf"),
            "MODELSCOPE_CACHE": str(home / "ms"),
            "HF_HUB_OFFLINE": "1",
        }

    def run(self, *args: str, timeout: float = 1800) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, *args], cwd=self.root, env=self.env, capture_output=True, text=True, timeout=timeout
        )

    def wall(self, *args: str) -> float:
        started = time.perf_counter()
        result = self.run(*args)
        elapsed = time.perf_counter() - started
        if result.returncode != 0:
            raise SystemExit(f"{self.name}: {' '.join(args)} failed:\n{result.stderr}")
        return elapsed


def own_entry_points(root: Path, folder: Path) -> Path:
    """A ``zhbench`` distribution's metadata in ``folder`` declaring the entry points of the checkout at ``root``
    (its ``pyproject.toml``): first on the path, it stands for the installed one, whose entry points name the
    modules of the checkout it was installed from."""
    declared = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))["project"]["entry-points"]
    info = folder / "zhbench-0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: zhbench\nVersion: 0\n", encoding="utf-8")
    sections = [
        f"[{group}]\n" + "".join(f"{k} = {v}\n" for k, v in points.items()) for group, points in declared.items()
    ]
    (info / "entry_points.txt").write_text("\n".join(sections), encoding="utf-8")
    return folder


def alternate(checkouts: list[Checkout], rounds: int, measure: Callable[[Checkout], float]) -> dict[str, float]:
    """The median of ``rounds`` measurements of each checkout, taken in turns."""
    values: dict[str, list[float]] = {c.name: [] for c in checkouts}
    for _ in range(rounds):
        for checkout in checkouts:
            values[checkout.name].append(measure(checkout))
    return {name: statistics.median(found) for name, found in values.items()}


def table_rows(output: str) -> list[list[str]]:
    """The cells of every Markdown table row a benchmark script printed."""
    return [[cell.strip() for cell in line.strip().strip("|").split("|")] for line in output.splitlines() if
            line.startswith("|") and not line.startswith("|---")]  # fmt: skip


def streaming_rates(checkout: Checkout) -> dict[str, float]:
    """tokens/s streamed through zhbench, per family, from the checkout's own bench_streaming.py."""
    result = checkout.run(f"{checkout.scripts}/bench_streaming.py", "--rounds", "3")
    if result.returncode != 0:
        raise SystemExit(f"{checkout.name}: bench_streaming.py failed:\n{result.stderr}")
    return {row[0]: float(row[2]) for row in table_rows(result.stdout) if re.fullmatch(r"[\d.]+", row[2])}


def app_figures(checkout: Checkout, size: str) -> dict[str, float]:
    """The app's throughput ratio and the key-press median while streaming, from its own bench_app.py."""
    result = checkout.run(f"{checkout.scripts}/bench_app.py", "--rounds", "3", "--size", size)
    if result.returncode != 0:
        raise SystemExit(f"{checkout.name}: bench_app.py failed:\n{result.stderr}")
    figures = {}
    for row in table_rows(result.stdout):
        if row[0] == "through the app":
            figures["ratio"] = float(row[2])
        elif row[0] == "both streaming":
            figures["key_median_ms"] = float(row[1])
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", type=Path, required=True, help="an older checkout (e.g. a git worktree)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--skip-app", action="store_true", help="leave out the app benchmark (minutes)")
    parser.add_argument("--app-size", choices=("tiny", "real"), default="tiny")
    args = parser.parse_args()
    checkouts = [Checkout("before", args.before), Checkout("after", HERE)]
    commits = {c.name: subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=c.root, capture_output=True,
                                      text=True).stdout.strip() for c in checkouts}  # fmt: skip
    print(f"before: {commits['before']} ({args.before}), after: {commits['after']}; median of {args.rounds} rounds")
    print()
    print("| what | before | after | after / before |")
    print("|---|---:|---:|---:|")

    def row(what: str, found: dict[str, float], unit: str = "s", digits: int = 3) -> None:
        before, after = found["before"], found["after"]
        print(f"| {what} | {before:.{digits}f} {unit} | {after:.{digits}f} {unit} | {after / before:.2f} |", flush=True)

    for checkout in checkouts:  # warm the file cache, as a second start would be
        checkout.wall("-m", checkout.module, "--help")
    row("`zhbench --help`", alternate(checkouts, args.rounds, lambda c: c.wall("-m", c.module, "--help")))
    row(
        "`zhbench models --json`",
        alternate(checkouts, args.rounds, lambda c: c.wall("-m", c.module, "models", "--json")),
    )
    row(
        "start to the first painted screen",
        alternate(checkouts, args.rounds, lambda c: one_start([sys.executable, "-m", c.module], cwd=c.root, env=c.env)),
    )
    decode: dict[str, dict[str, list[float]]] = {c.name: {} for c in checkouts}
    for _ in range(2):
        for checkout in checkouts:
            for family, rate in streaming_rates(checkout).items():
                decode[checkout.name].setdefault(family, []).append(rate)
    for family in decode["after"]:
        found = {name: statistics.median(rates[family]) for name, rates in decode.items()}
        row(f"decode, {family} (streamed through zhbench)", found, "tok/s", 0)
    if not args.skip_app:
        app: dict[str, dict[str, float]] = {c.name: app_figures(c, args.app_size) for c in checkouts}
        row(f"app, both panes streaming ({args.app_size}): ratio to the engines alone", {
            name: figures["ratio"] for name, figures in app.items()}, "", 2)  # fmt: skip
        row(f"app, key press to screen while streaming ({args.app_size}), median", {
            name: figures["key_median_ms"] for name, figures in app.items()}, "ms", 1)  # fmt: skip


if __name__ == "__main__":
    main()
