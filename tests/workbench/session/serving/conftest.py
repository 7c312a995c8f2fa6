"""``serve_models``: the real serving app on uvicorn, on 127.0.0.1 at a free port, in a thread of the test."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field

import pytest
import uvicorn

from zhbench.engines.api import ChatEngine
from zhbench.workbench.session.serving.app import LOOPBACK_HOSTS, ServedModels, ServedReply, serving_app


@dataclass
class RunningServer:
    """A server up for one test: its base URL (ending in /v1), what it serves, and the replies it finished."""

    url: str
    served: ServedModels
    replies: list[ServedReply] = field(default_factory=list)

    def wait_for_replies(self, count: int, timeout: float = 30.0) -> list[ServedReply]:
        deadline = time.monotonic() + timeout
        while len(self.replies) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"{len(self.replies)} replies reported, {count} expected")
            time.sleep(0.01)
        return self.replies


@contextmanager
def running(
    engines: Mapping[str, ChatEngine | None],
    *,
    queue_limit: int = 8,
    api_key: str | None = None,
    allowed_hosts: Sequence[str] = LOOPBACK_HOSTS,
) -> Iterator[RunningServer]:
    """Serve ``engines`` by id (None: a model still loading) until the block ends."""
    replies: list[ServedReply] = []
    served = ServedModels.loading(engines, queue_limit=queue_limit, api_key=api_key, on_reply=replies.append)
    for ident, engine in engines.items():
        if engine is not None:
            served.ready(ident, engine)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    app = serving_app(served, allowed_hosts)
    config = uvicorn.Config(app, log_level="warning", lifespan="off", timeout_graceful_shutdown=1)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.01)
    try:
        yield RunningServer(f"http://127.0.0.1:{port}/v1", served, replies)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


@pytest.fixture
def serve_models() -> Iterator[Callable[..., RunningServer]]:
    """``serve_models({id: engine}, queue_limit=, api_key=, allowed_hosts=)``: a running server, stopped after
    the test."""
    with ExitStack() as stack:
        yield lambda engines, **options: stack.enter_context(running(engines, **options))
