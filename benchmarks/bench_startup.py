"""Time from starting ``zhbench`` to its first painted screen, in a real pseudo-terminal.

Each run starts the app in a fresh process (in empty config, data and cache folders, with no models, so
no model load competes) and reads the terminal until the footer of the first screen has been drawn.
Median and slowest of the runs. The app is then quit with Ctrl+Q.

    python benchmarks/bench_startup.py [--runs 5]
"""

from __future__ import annotations

import argparse
import fcntl
import os
import pty
import select
import shutil
import statistics
import struct
import sys
import tempfile
import termios
import time

ROWS, COLUMNS = 40, 150
#: drawn by the footer, the last widget of the first screen
FIRST_SCREEN_MARK = b"palette"


def one_start(
    command: list[str], *, cwd: str | os.PathLike[str] | None = None, env: dict[str, str] | None = None
) -> float:
    """Seconds from starting ``command`` (in ``cwd``, with ``env``) to its first painted screen."""
    home = tempfile.mkdtemp(prefix="zhbench-start-")
    env = {
        **(env if env is not None else os.environ),
        "XDG_CONFIG_HOME": f"{home}/config",
        "XDG_DATA_HOME": f"{home}/data",
        "XDG_CACHE_HOME": f"{home}/cache",
        "HF_HUB_CACHE": f"{home}/hf",
        "MODELSCOPE_CACHE": f"{home}/ms",
        "TERM": "xterm-256color",
    }
    started = time.perf_counter()
    pid, fd = pty.fork()
    if pid == 0:  # the child: the app, on the terminal's other end
        if cwd is not None:
            os.chdir(cwd)
        os.execvpe(command[0], command, env)
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", ROWS, COLUMNS, 0, 0))
    seen = b""
    painted = None
    while painted is None and time.perf_counter() - started < 30:
        ready, _, _ = select.select([fd], [], [], 0.01)
        if ready:
            seen += os.read(fd, 1 << 16)
            if FIRST_SCREEN_MARK in seen:
                painted = time.perf_counter() - started
    os.write(fd, b"\x11")  # Ctrl+Q
    deadline = time.perf_counter() + 10
    while time.perf_counter() < deadline and os.waitpid(pid, os.WNOHANG) == (0, 0):
        if select.select([fd], [], [], 0.05)[0]:
            try:
                os.read(fd, 1 << 16)
            except OSError:
                break
    os.close(fd)
    shutil.rmtree(home, ignore_errors=True)
    if painted is None:
        raise SystemExit("the first screen was not drawn within 30 s")
    return painted


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    command = [sys.executable, "-m", "zhbench"]
    one_start(command)  # warm the file cache, as a second start would be
    times = [one_start(command) for _ in range(args.runs)]
    print(f"start to first painted screen, {args.runs} runs, {COLUMNS}x{ROWS} pseudo-terminal")
    print("| median (s) | slowest (s) |")
    print("|---:|---:|")
    print(f"| {statistics.median(times):.2f} | {max(times):.2f} |")


if __name__ == "__main__":
    main()
