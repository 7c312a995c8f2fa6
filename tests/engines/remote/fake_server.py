"""A real OpenAI-compatible HTTP server on 127.0.0.1, scripted per test: it streams correct SSE, or misbehaves
on purpose (a status, an error mid-stream, a malformed line, silence, a stream that never ends)."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

#: what the chat endpoint does with a request: write a response through the handler
ChatScript = Callable[["Handler", dict[str, Any]], None]


def chunk(
    content: str | None = None,
    *,
    reasoning: str | None = None,
    finish: str | None = None,
    model: str = "tiny-chat",
) -> str:
    """One ``chat.completion.chunk`` as JSON."""
    delta: dict[str, Any] = {}
    if content is not None:
        delta["content"] = content
    if reasoning is not None:
        delta["reasoning_content"] = reasoning
    choice = {"index": 0, "delta": delta, "finish_reason": finish}
    return json.dumps({"id": "c1", "object": "chat.completion.chunk", "model": model, "choices": [choice]})


def usage_chunk(prompt: int, completion: int, reasoning: int | None = None) -> str:
    usage: dict[str, Any] = {"prompt_tokens": prompt, "completion_tokens": completion}
    if reasoning is not None:
        usage["completion_tokens_details"] = {"reasoning_tokens": reasoning}
    return json.dumps({"id": "c1", "object": "chat.completion.chunk", "choices": [], "usage": usage})


def answer(*pieces: str, finish: str = "stop", usage: tuple[int, int] | None = (7, 2)) -> list[str]:
    """The ``data`` lines of a well-formed streamed reply."""
    lines = [chunk(piece) for piece in pieces] + [chunk(finish=finish)]
    if usage is not None:
        lines.append(usage_chunk(*usage))
    return [*lines, "[DONE]"]


def stream(lines: list[str], delay: float = 0.0) -> ChatScript:
    def script(handler: Handler, body: dict[str, Any]) -> None:
        handler.start_stream()
        for line in lines:
            handler.send_event(line)
            time.sleep(delay)

    return script


def status(code: int, body: object) -> ChatScript:
    def script(handler: Handler, _: dict[str, Any]) -> None:
        handler.send_json(code, body)

    return script


def silent(seconds: float) -> ChatScript:
    """Accept the request, then send nothing for ``seconds``."""

    def script(handler: Handler, _: dict[str, Any]) -> None:
        time.sleep(seconds)

    return script


def endless(server: FakeServer, interval: float = 0.02) -> ChatScript:
    """Stream a piece every ``interval`` until the client goes away; record that it did."""

    def script(handler: Handler, _: dict[str, Any]) -> None:
        handler.start_stream()
        try:
            while True:
                handler.send_event(chunk("字"))
                time.sleep(interval)
        except OSError:  # the client closed the connection: the request is cancelled
            server.disconnected.set()

    return script


def raw(code: int, headers: dict[str, str], pieces: Iterator[bytes], delay: float = 0.0) -> ChatScript:
    """Answer with ``pieces`` as they are (no framing), ``delay`` seconds apart, until the client goes away."""

    def script(handler: Handler, _: dict[str, Any]) -> None:
        handler.send_response(code)
        for name, value in headers.items():
            handler.send_header(name, value)
        handler.send_header("Connection", "close")
        handler.end_headers()
        handler.close_connection = True
        try:
            for piece in pieces:
                handler.wfile.write(piece)
                handler.wfile.flush()
                time.sleep(delay)
        except OSError:
            pass

    return script


@dataclass
class FakeServer:
    """The server's script and what it saw. ``url`` is its base URL (ending in /v1)."""

    models: list[str] = field(default_factory=lambda: ["tiny-chat"])
    models_status: int = 200
    #: what ``GET /v1/models`` does instead of listing ``models``, where set
    listing: ChatScript | None = None
    chat: ChatScript = field(default_factory=lambda: stream(answer("你好", "，世界")))
    requests: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    disconnected: threading.Event = field(default_factory=threading.Event)
    url: str = ""


class Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # quiet tests
        pass

    def do_GET(self) -> None:
        fake = self.server.fake
        fake.headers.append(dict(self.headers))
        if self.path != "/v1/models":
            self.send_json(404, {"error": {"message": f"no route {self.path}"}})
        elif fake.listing is not None:
            fake.listing(self, {})
        elif fake.models_status != 200:
            self.send_json(fake.models_status, {"error": {"message": "listing refused"}})
        else:
            self.send_json(200, {"object": "list", "data": [{"id": m, "object": "model"} for m in fake.models]})

    def do_POST(self) -> None:
        fake = self.server.fake
        fake.headers.append(dict(self.headers))
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        fake.requests.append(body)
        if self.path != "/v1/chat/completions":
            self.send_json(404, {"error": {"message": f"no route {self.path}"}})
            return
        fake.chat(self, body)

    def send_json(self, code: int, body: object) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def start_stream(self) -> None:
        """Headers of an event stream whose end is the connection's close (HTTP/1.0 style)."""
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True

    def send_event(self, data: str) -> None:
        self.wfile.write(f"data: {data}\n\n".encode())
        self.wfile.flush()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    fake: FakeServer


def serve(fake: FakeServer) -> Iterator[FakeServer]:
    """Run ``fake`` on a free port of 127.0.0.1 until the generator is closed (a fixture's body)."""
    httpd = _Server(("127.0.0.1", 0), Handler)
    httpd.fake = fake
    fake.url = f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        httpd.shutdown()
        httpd.server_close()


def closed_port_url() -> str:
    """A base URL on 127.0.0.1 where nothing listens (connections are refused)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"
