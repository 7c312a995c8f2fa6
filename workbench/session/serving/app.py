"""The served models and the Starlette app that answers ``GET /v1/models`` and ``POST /v1/chat/completions``.

One engine answers one request at a time (``EngineTurns``); up to ``queue_limit`` more wait their turn and
the next is refused with 429, so a busy model says so at once rather than hold a client for minutes. A
client that goes away, waiting or mid-reply, cancels its request: its engine stops within one token.

Errors are OpenAI's error object with the status an OpenAI client expects: 400 (a malformed request),
401 (no or a wrong bearer key), 404 (an unknown model or path), 429 (the model's queue is full), 500 (the
engine failed) and 503 (the model is still loading).
"""

from __future__ import annotations

import hmac
import json
import os
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import anyio
import anyio.to_thread
from starlette.applications import Starlette
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from zhbench.engines.api import ChatEngine, default_params
from zhbench.engines.errors import GenerationError
from zhbench.engines.types import Reply
from zhbench.workbench.session.identity import path_model_id
from zhbench.workbench.session.serving.replies import (
    ChunkMaker,
    Delta,
    ReplyRun,
    completion_id,
    completion_json,
    error_json,
)
from zhbench.workbench.session.serving.requests import BadRequest, ChatRequest, read_chat_request, requested_model

#: requests that may wait for a busy model before the next is refused with 429
DEFAULT_QUEUE = 8
#: the largest request body read: far more text than any served model's context holds
MAX_REQUEST_BYTES = 4 * 2**20
#: the names a request's ``Host`` may give by default: this machine's own (a page on another name that
#: resolves to 127.0.0.1, DNS rebinding, is refused)
LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "[::1]")


def served_model_id(spec: str) -> str:
    """The id a model given to ``serve`` has in the API: a local model's id as every record names it
    (``path_model_id``: a folder's or file's name, ``model.gguf`` with its suffix; the hub id of a path in a hub
    cache; an Ollama blob's ``name:tag``), or a hub id or Ollama name as it was given."""
    path = Path(spec).expanduser()
    return path_model_id(Path(os.path.abspath(path))) if path.exists() else spec


class QueueFull(Exception):
    """A model is answering a request and ``queue_limit`` more are waiting."""


class EngineTurns:
    """One request at a time for one engine, at most ``queue_limit`` waiting in order. Used from the event
    loop only, so the count needs no lock of its own."""

    def __init__(self, queue_limit: int) -> None:
        self.queue_limit = queue_limit
        self._lock = anyio.Lock()
        #: requests answered or waiting now
        self.taken = 0

    @asynccontextmanager
    async def turn(self) -> AsyncIterator[None]:
        """Wait for the engine (``QueueFull`` at once when too many wait); cancelling the wait leaves the queue."""
        if self.taken > self.queue_limit:  # one answering, queue_limit waiting
            raise QueueFull
        self.taken += 1
        try:
            async with self._lock:
                yield
        finally:
            self.taken -= 1


@dataclass
class ServedModel:
    """A model the server offers: loading (``engine`` None) or ready."""

    id: str
    turns: EngineTurns
    engine: ChatEngine | None = None


@dataclass(frozen=True)
class ServedReply:
    """A reply the server finished (or stopped: the client went away), for the server's log."""

    model: str
    reply: Reply
    #: False when the client went away before the reply reached it
    delivered: bool


@dataclass
class ServedModels:
    """What the server serves, and how: the models by id, the bearer key (None: no key needed), and where
    each finished reply is reported."""

    models: dict[str, ServedModel]
    api_key: str | None = None
    on_reply: Callable[[ServedReply], object] | None = None
    created: int = field(default_factory=lambda: int(time.time()))

    @classmethod
    def loading(
        cls,
        ids: Iterable[str],
        *,
        queue_limit: int = DEFAULT_QUEUE,
        api_key: str | None = None,
        on_reply: Callable[[ServedReply], object] | None = None,
    ) -> ServedModels:
        """The models ``ids``, none loaded yet: each answers 503 until ``ready`` is called for it."""
        models = {ident: ServedModel(ident, EngineTurns(queue_limit)) for ident in ids}
        return cls(models, api_key=api_key, on_reply=on_reply)

    def ready(self, model_id: str, engine: ChatEngine) -> None:
        """``model_id`` has loaded: requests for it are answered from now on (callable from any thread)."""
        self.models[model_id].engine = engine

    def authorized(self, request: Request) -> bool:
        """Whether the request carries the bearer key (always, where none is needed), compared in constant time."""
        if self.api_key is None:
            return True
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(token.strip().encode(), self.api_key.encode())


#: what a 429 asks the client to wait, in seconds (the official client honours ``Retry-After``)
RETRY_AFTER_S = 1
#: headers that go with a refusal of this status
ERROR_HEADERS = {401: {"WWW-Authenticate": "Bearer"}, 429: {"Retry-After": str(RETRY_AFTER_S)}}


def error_response(status: int, message: str, kind: str, code: str | None, param: str | None = None) -> Response:
    return JSONResponse(error_json(message, kind, code, param), status_code=status, headers=ERROR_HEADERS.get(status))


def unauthorized() -> Response:
    # The key itself is never echoed, nor what was sent in its place.
    message = "missing or wrong API key (Authorization: Bearer KEY)"
    return error_response(401, message, "authentication_error", "invalid_api_key")


class TooLarge(Exception):
    """A request body past its cap."""


async def read_capped(request: Request, limit: int) -> bytes:
    """The request's body, ``TooLarge`` as soon as it is past ``limit`` bytes (before reading the rest)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise TooLarge
    body = bytearray()
    async for piece in request.stream():
        body += piece
        if len(body) > limit:
            raise TooLarge
    return bytes(body)


class ChatCompletions:
    """``POST /v1/chat/completions`` as a plain ASGI app: it owns the whole exchange, so that it can watch for
    the client going away while the request waits and while the reply is generated."""

    def __init__(self, served: ServedModels) -> None:
        self.served = served

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        try:
            refusal, chosen = await self._accept(request)
        except ClientDisconnect:  # the client left before its body was whole: no one to answer, nothing to log
            return
        if refusal is not None:
            await refusal(scope, receive, send)
            return
        assert chosen is not None
        model, chat = chosen
        assert model.engine is not None
        run = ReplyRun(model.engine, chat, threading.Event())
        try:
            await self._run(scope, receive, send, model, run)
        except anyio.get_cancelled_exc_class():
            # Only a stopping server cancels a request from outside (uvicorn, once its grace period is over): the
            # engine has been told to stop, and there is no one to answer, nor a traceback worth logging.
            return

    async def _run(self, scope: Scope, receive: Receive, send: Send, model: ServedModel, run: ReplyRun) -> None:
        """Answer in the model's turn, watching for the client leaving; report the reply however it ended."""
        cancel = run.cancel
        async with anyio.create_task_group() as task_group:
            task_group.start_soon(self._cancel_when_gone, receive, cancel, task_group.cancel_scope)
            try:
                async with model.turns.turn():
                    await self._answer(send, model.id, run)
            except QueueFull:
                busy = f"{model.id} is busy: {model.turns.queue_limit} requests are waiting already; try again later"
                await error_response(429, busy, "rate_limit_error", "queue_full")(scope, receive, send)
            except OSError:  # the client went away while the answer was sent
                cancel.set()
            finally:
                task_group.cancel_scope.cancel()  # stop watching
                if run.reply is not None and self.served.on_reply is not None:  # a reply stopped part-way too
                    delivered = not cancel.is_set() or run.cutter.hit
                    self.served.on_reply(ServedReply(model.id, run.reply, delivered))

    async def _accept(self, request: Request) -> tuple[Response | None, tuple[ServedModel, ChatRequest] | None]:
        """The model and request to answer, or the response that refuses the request."""
        if not self.served.authorized(request):
            return unauthorized(), None
        media_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
        if media_type != "application/json":  # a web page's form or text/plain post is no API call
            message = "the request body must be JSON, sent with Content-Type: application/json"
            return error_response(415, message, "invalid_request_error", None), None
        try:
            body = json.loads(await read_capped(request, MAX_REQUEST_BYTES))
        except TooLarge:
            message = f"the request body is larger than {MAX_REQUEST_BYTES // 2**20} MiB"
            return error_response(413, message, "invalid_request_error", None), None
        except (ValueError, RecursionError):  # not JSON, not UTF-8, or nested too deep to read
            return error_response(400, "the request body is not valid JSON", "invalid_request_error", None), None
        try:
            model = self.served.models.get(requested_model(body))
            if model is None:
                known = ", ".join(self.served.models)
                message = f"unknown model {body['model']!r} (served: {known})"
                return error_response(404, message, "invalid_request_error", "model_not_found", "model"), None
            if model.engine is None:
                message = f"{model.id} is still loading; try again shortly"
                return error_response(503, message, "service_unavailable", "model_loading", "model"), None
            return None, (model, read_chat_request(body, default_params(model.engine)))
        except BadRequest as exc:
            return error_response(400, str(exc), "invalid_request_error", None, exc.param), None

    async def _cancel_when_gone(self, receive: Receive, cancel: threading.Event, scope: anyio.CancelScope) -> None:
        """Wait for the client to disconnect; then cancel its reply (the engine's event) and its wait."""
        while (await receive())["type"] != "http.disconnect":
            pass
        cancel.set()
        scope.cancel()

    async def _answer(self, send: Send, model_id: str, run: ReplyRun) -> None:
        """Generate the reply (this request's turn has come) and send it, whole or streamed."""
        ident = completion_id()
        try:
            await anyio.to_thread.run_sync(run.check_fits)
        except BadRequest as exc:
            error = error_json(str(exc), "invalid_request_error", "context_length_exceeded", exc.param)
            await _send_json(send, 400, error)
            return
        if not run.request.stream:
            try:
                outcome = await run.run()
            except GenerationError as exc:
                await _send_json(send, 500, error_json(str(exc), "server_error", "generation_failed"))
                return
            await _send_json(send, 200, completion_json(ident, model_id, outcome))
            return
        chunks = ChunkMaker(ident, model_id, run.request.include_usage, int(time.time()))
        headers = [(b"content-type", b"text/event-stream; charset=utf-8"), (b"cache-control", b"no-cache")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})

        async def event(data: object) -> None:
            text = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False)
            await send({"type": "http.response.body", "body": f"data: {text}\n\n".encode(), "more_body": True})

        async def forward(delta: Delta) -> None:
            await event(chunks.delta_chunk(delta))

        await event(chunks.chunk({"role": "assistant", "content": ""}))
        try:
            outcome = await run.run(forward)
        except GenerationError as exc:  # mid-stream: the error object, as OpenAI-compatible servers send it
            await event(error_json(str(exc), "server_error", "generation_failed"))
        else:
            await event(chunks.chunk({}, outcome.finish_reason))
            if run.request.include_usage:
                await event(chunks.usage_chunk(outcome.reply))
        await event("[DONE]")
        await send({"type": "http.response.body", "body": b"", "more_body": False})


async def _send_json(send: Send, status: int, body: Mapping[str, object]) -> None:
    content = json.dumps(body, ensure_ascii=False).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(content)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": content, "more_body": False})


def serving_app(served: ServedModels, allowed_hosts: Sequence[str] = LOOPBACK_HOSTS) -> Starlette:
    """The ASGI app serving ``served``; bind it with uvicorn (``zhbench serve``, or a test's own server).
    A request whose ``Host`` is none of ``allowed_hosts`` (``*`` allows any, ``*.lan`` a domain's names) is
    refused with 400 (``HostCheck``) before anything else is read."""

    async def list_models(request: Request) -> Response:
        if not served.authorized(request):
            return unauthorized()
        data = [
            {"id": ident, "object": "model", "created": served.created, "owned_by": "zhbench",
             "ready": model.engine is not None}
            for ident, model in served.models.items()
        ]
        return JSONResponse({"object": "list", "data": data})

    async def http_error(request: Request, exc: Exception) -> Response:
        """Starlette's own 404 (no such path) and 405 (wrong method), in OpenAI's error shape."""
        status = exc.status_code if isinstance(exc, HTTPException) else 500
        detail = exc.detail if isinstance(exc, HTTPException) else "internal error"
        return error_response(status, f"{request.method} {request.url.path}: {detail}", "invalid_request_error", None)

    routes = [
        Route("/v1/models", list_models, methods=["GET"]),
        Route("/v1/chat/completions", ChatCompletions(served), methods=["POST"]),
    ]
    trusted = Middleware(HostCheck, allowed_hosts=allowed_hosts)
    return Starlette(routes=routes, exception_handlers={HTTPException: http_error}, middleware=[trusted])


#: the key ``HostCheck`` marks a request's scope with once Starlette found its ``Host`` allowed
_HOST_ALLOWED = "zhbench.host_allowed"


class HostCheck:
    """Starlette's ``TrustedHostMiddleware`` decides which ``Host`` names get in; a refusal is OpenAI's error
    object (a 400), where Starlette's own is a plain-text line that OpenAI clients cannot read."""

    def __init__(self, app: ASGIApp, allowed_hosts: Sequence[str]) -> None:
        self.app = app
        self.trusted = TrustedHostMiddleware(_mark_allowed, allowed_hosts=list(allowed_hosts), www_redirect=False)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.trusted(scope, receive, _discard)  # Starlette's refusal goes nowhere; its pass marks the scope
        if scope.pop(_HOST_ALLOWED, False):
            await self.app(scope, receive, send)
            return
        host = Headers(scope=scope).get("host", "")
        message = (
            f"the Host header {host!r} is not a name this server answers to "
            "(zhbench serve --allow-host NAME adds one)"
        )
        await error_response(400, message, "invalid_request_error", "invalid_host")(scope, receive, send)


async def _mark_allowed(scope: Scope, receive: Receive, send: Send) -> None:
    scope[_HOST_ALLOWED] = True


async def _discard(message: Message) -> None:
    pass
