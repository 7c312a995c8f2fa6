"""What the fake hubs share: a threaded HTTP server on 127.0.0.1 that logs every request, answers JSON,
and streams a file's bytes the way a hub's file API does (``Range: bytes=N-`` answered with a 206), slowly
or with the connection cut when a test asks.

A subclass routes each request (``route``) to ``send_json`` or ``send_file``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Self
from urllib.parse import unquote, urlsplit

ROOT = Path(__file__).resolve().parents[3]


@dataclass(frozen=True)
class Request:
    method: str
    path: str  # unquoted, without the query
    range: str | None  # the Range header
    file: str | None = None  # the repository file whose bytes were asked for; None for the hub's API


@dataclass(kw_only=True)
class LoopbackHub:
    """A hub on 127.0.0.1 (``start``, then ``url``); the routes are a subclass's."""

    #: bytes per second for files bigger than ``throttle_above`` (None: full speed)
    bytes_per_s: int | None = None
    throttle_above: int = 1_000_000
    #: file names whose next GET is cut after this many bytes (the connection dropped), once each
    drop_after: dict[str, int] = field(default_factory=dict)
    #: file names whose every GET is cut before any byte
    always_drop: set[str] = field(default_factory=set)
    log: list[Request] = field(default_factory=list)
    sent: dict[str, int] = field(default_factory=dict)  # body bytes sent per file
    streaming: int = 0  # bodies being sent now
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def start(self) -> Self:
        hub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:  # quiet
                pass

            def do_HEAD(self) -> None:
                hub.route(self, body=False)

            def do_GET(self) -> None:
                hub.route(self, body=True)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def gets(self, name: str) -> list[Request]:
        """The GET requests of the bytes of the file ``name``."""
        return [r for r in self.log if r.method == "GET" and r.file == name]

    def fetched(self) -> set[str]:
        """The files whose bytes were asked for."""
        return {r.file for r in self.log if r.method == "GET" and r.file is not None}

    # --- for the subclasses -----------------------------------------------------------------------

    def route(self, handler: BaseHTTPRequestHandler, *, body: bool) -> None:
        raise NotImplementedError

    @staticmethod
    def path_of(handler: BaseHTTPRequestHandler) -> str:
        return unquote(urlsplit(handler.path).path)

    def note(self, handler: BaseHTTPRequestHandler, file: str | None = None) -> None:
        """Log the request being answered (``file``: the repository file whose bytes it asks for)."""
        self.log.append(Request(handler.command, self.path_of(handler), handler.headers.get("Range"), file))

    @staticmethod
    def send_json(
        handler: BaseHTTPRequestHandler, status: int, payload: Any, headers: dict[str, str] | None = None
    ) -> None:
        data = json.dumps(payload, ensure_ascii=False).encode()
        handler.send_response(status)
        for name, value in (headers or {}).items():
            handler.send_header(name, value)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)

    def send_file(
        self, handler: BaseHTTPRequestHandler, name: str, data: bytes, headers: dict[str, str], *, body: bool
    ) -> None:
        """The bytes of ``name``, from a ``Range: bytes=N-`` start on (206) when the GET asks for one,
        throttled, or cut as the test set."""
        start = 0
        asked = handler.headers.get("Range")
        if body and asked and asked.startswith("bytes="):
            start = int(asked.removeprefix("bytes=").split("-")[0])
        handler.send_response(206 if start else 200)
        for header, value in headers.items():
            handler.send_header(header, value)
        handler.send_header("Accept-Ranges", "bytes")
        handler.send_header("Content-Length", str(len(data) - start))
        if start:
            handler.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        handler.end_headers()
        if not body:
            return
        if name in self.always_drop:
            handler.close_connection = True
            return
        cut = self.drop_after.pop(name, None)
        rate = self.bytes_per_s if len(data) > self.throttle_above else None  # as set when the GET came
        step = 64 * 1024
        with self.lock:
            self.streaming += 1
        try:
            for offset in range(start, len(data), step):
                if cut is not None and offset - start >= cut:
                    handler.close_connection = True
                    return
                chunk = data[offset : offset + step]
                try:
                    handler.wfile.write(chunk)
                    handler.wfile.flush()
                except (BrokenPipeError, ConnectionResetError):
                    return
                with self.lock:
                    self.sent[name] = self.sent.get(name, 0) + len(chunk)
                if rate is not None:
                    time.sleep(len(chunk) / rate)
        finally:
            with self.lock:
                self.streaming -= 1


def kill_mid_file(hub: LoopbackHub, args: list[str], name: str, after: int) -> None:
    """Run ``zhbench ARGS`` in another process (this one's environment, less ``HF_HUB_OFFLINE``) and kill it
    with SIGKILL (nothing of it runs after: no ``finally``, no clean-up) once ``hub`` has sent ``after`` bytes
    of the file ``name``."""
    env = {k: v for k, v in os.environ.items() if k != "HF_HUB_OFFLINE"}
    with tempfile.TemporaryFile() as err:
        child = subprocess.Popen([sys.executable, "-m", "zhbench", *args], cwd=ROOT, env=env, stdout=err, stderr=err)
        try:
            deadline = time.monotonic() + 60
            while hub.sent.get(name, 0) < after:
                if time.monotonic() > deadline or child.poll() is not None:
                    err.seek(0)
                    raise AssertionError(f"the pull ended or stalled before the kill: {err.read().decode()[-2000:]}")
                time.sleep(0.02)
        finally:
            child.kill()
            child.wait()
    deadline = time.monotonic() + 10
    while hub.streaming and time.monotonic() < deadline:  # the server writes on until it meets the closed socket
        time.sleep(0.02)
