"""``zhbench serve`` under load on loopback: 32 streaming clients for 30 s against one tiny stand-in.

The server is the real command (``python -m zhbench serve``) in a process of its own, serving a tiny
random-weight stand-in with the default queue of 8. Each client sends its own prompt again and again,
greedy, streamed; a 429 sends it back to try again after the server's ``Retry-After``. What is checked:

- every request is answered or refused with 429, none hangs (each has ``--timeout`` seconds to finish);
- no reply is mixed with another: every chunk of a stream carries that stream's id (and no two streams
  share one), the stream ends with a finish reason and ``[DONE]``, and a prompt's greedy reply is the same
  text every time it is answered;
- memory is flat: the server's RSS after a warm-up request against its RSS at the end.

It prints requests/s (answered), p50/p95 time to first token as the client sees it (queue wait included),
and the failures by kind.

    python benchmarks/bench_serve.py [--clients 32] [--seconds 30] [--family gpt2-dialogbot] [--max-tokens 16]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx

from zhbench.engines.registry import write_standin

#: how long a refused client waits before it asks again, where the server does not say (``Retry-After``)
RETRY_AFTER_429_S = 1.0


@dataclass
class Tally:
    """What the clients saw."""

    answered: int = 0
    refused: int = 0
    ttft_s: list[float] = field(default_factory=list)
    failures: Counter[str] = field(default_factory=Counter)
    ids: set[str] = field(default_factory=set)
    #: each prompt's first answer: every later answer to it must be the same text
    replies: dict[str, str] = field(default_factory=dict)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


async def one_request(http: httpx.AsyncClient, url: str, model: str, prompt: str, args: argparse.Namespace,
                      tally: Tally) -> None:
    body = {"model": model, "messages": [{"role": "user", "content": prompt}], "temperature": 0,
            "max_tokens": args.max_tokens, "stream": True}
    started = time.perf_counter()
    async with http.stream("POST", f"{url}/chat/completions", json=body) as response:
        if response.status_code == 429:
            await response.aread()
            tally.refused += 1
            await asyncio.sleep(float(response.headers.get("retry-after", RETRY_AFTER_429_S)))
            return
        if response.status_code != 200:
            tally.failures[f"http {response.status_code}"] += 1
            return
        ids: set[str] = set()
        text, finish, done, first = "", None, False, None
        async for line in response.aiter_lines():
            if not line.startswith("data: "):
                continue
            data = line.removeprefix("data: ")
            if data == "[DONE]":
                done = True
                continue
            chunk = json.loads(data)
            if "error" in chunk:
                tally.failures["error mid-stream"] += 1
                return
            ids.add(chunk["id"])
            choice = chunk["choices"][0]
            piece = choice["delta"].get("content") or ""
            if piece and first is None:
                first = time.perf_counter() - started
            text += piece
            finish = choice["finish_reason"] or finish
    if len(ids) != 1 or ids & tally.ids:
        tally.failures["chunk ids mixed"] += 1
    elif not done or finish is None:
        tally.failures["stream ended early"] += 1
    elif tally.replies.setdefault(prompt, text) != text:
        tally.failures["reply differs from its prompt's"] += 1
    else:
        tally.answered += 1
        tally.ttft_s.append(first if first is not None else time.perf_counter() - started)
    tally.ids |= ids


async def client(index: int, url: str, model: str, args: argparse.Namespace, tally: Tally, until: float) -> None:
    prompt = f"第{index}位客人：请介绍一下你自己。"
    async with httpx.AsyncClient(timeout=httpx.Timeout(args.timeout)) as http:
        while time.monotonic() < until:
            try:
                await asyncio.wait_for(one_request(http, url, model, prompt, args, tally), args.timeout)
            except TimeoutError:
                tally.failures["hung (timeout)"] += 1
            except httpx.HTTPError as exc:
                tally.failures[f"transport: {type(exc).__name__}"] += 1


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--family", default="gpt2-dialogbot")
    parser.add_argument("--max-tokens", type=int, default=16)
    parser.add_argument("--timeout", type=float, default=60, help="seconds a request may take before it counts as hung")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as folder:
        model_path = write_standin(args.family, Path(folder) / f"tiny-{args.family}")
        port = free_port()
        url = f"http://127.0.0.1:{port}/v1"
        command = [sys.executable, "-m", "zhbench", "serve", "--model", str(model_path), "--port", str(port),
                   "--device", "cpu"]
        log = Path(folder) / "serve.log"
        with log.open("w") as log_file:
            server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=log_file,
                                      env={**os.environ, "HF_HUB_OFFLINE": "1"})
            try:
                status = asyncio.run(measure(server, url, model_path.name, args))
            finally:
                server.terminate()
                server.wait(timeout=30)
        print(f"engine busy: {engine_seconds(log.read_text(encoding='utf-8')):.1f} s of replies "
              "(the server's one line per reply: tokens over tokens/s)")
        return status


def engine_seconds(log: str) -> float:
    """The time the engine spent on replies, from serve's log lines (``N tokens · … · R tok/s · …``)."""
    found = re.findall(r": (\d+) tokens · .*? · ([\d.]+) tok/s", log)
    return sum(int(tokens) / float(rate) for tokens, rate in found if float(rate) > 0)


async def measure(server: subprocess.Popen[bytes], url: str, model: str, args: argparse.Namespace) -> int:
    deadline = time.monotonic() + 300
    async with httpx.AsyncClient(timeout=60) as http:
        while True:
            if server.poll() is not None or time.monotonic() > deadline:
                print("serve did not come up", file=sys.stderr)
                return 1
            try:
                if all(entry["ready"] for entry in (await http.get(f"{url}/models")).json()["data"]):
                    break
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.2)
        await one_request(http, url, model, "预热", args, Tally())  # warm-up: the first reply's one-off costs
    rss_start = rss_mb(server.pid)
    tally = Tally()
    started = time.monotonic()
    until = started + args.seconds
    await asyncio.gather(*(client(i, url, model, args, tally, until) for i in range(args.clients)))
    wall = time.monotonic() - started
    rss_end = rss_mb(server.pid)

    print(f"{args.clients} clients · {args.seconds:g} s · {args.family} stand-in · max_tokens {args.max_tokens}")
    print(f"answered {tally.answered} ({tally.answered / wall:.1f} requests/s) · refused with 429: {tally.refused}")
    if tally.ttft_s:
        print(f"time to first token: p50 {statistics.median(tally.ttft_s) * 1000:.0f} ms · "
              f"p95 {percentile(tally.ttft_s, 0.95) * 1000:.0f} ms")
    print(f"failures: {dict(tally.failures) or 'none'}")
    print(f"wall: {wall:.1f} s (the last replies finish after the clients stop asking)")
    print(f"server RSS: {rss_start:.0f} MB after warm-up, {rss_end:.0f} MB at the end "
          f"({(rss_end - rss_start) / rss_start * 100:+.1f}%)")
    return 0 if not tally.failures else 1


if __name__ == "__main__":
    sys.exit(main())
