"""One reply to a served request: generated in a worker thread (the engine's ``reply`` blocks), its pieces
handed to the event loop as they come, stop strings applied, and the OpenAI JSON shapes of what goes back.

Cancellation is the engine's own: the ``threading.Event`` it checks at every token. It is set when a stop
string appears, when the client goes away, or when the task waiting on the reply is cancelled; the task
always waits for the thread to end, so an engine is never handed to a second request while still busy.
"""

from __future__ import annotations

import contextlib
import math
import secrets
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import anyio
import anyio.from_thread
import anyio.to_thread

from zhbench.engines.api import ChatEngine, PromptInspecting
from zhbench.engines.errors import GenerationError
from zhbench.engines.text import partial_end
from zhbench.engines.types import Reply, StopReason
from zhbench.workbench.session.serving.requests import BadRequest, ChatRequest

#: the most characters one token of a context is taken to hold: a message longer than the context's tokens
#: times this cannot fit in it, and is refused without being tokenised
MAX_CHARS_PER_TOKEN = 32


def cut_at_stop(text: str, stops: Sequence[str]) -> tuple[str, bool]:
    """``text`` up to where the first stop string starts, and whether there was one."""
    found = [index for stop in stops if (index := text.find(stop)) >= 0]
    return (text[: min(found)], True) if found else (text, False)


class StopCutter:
    """Streams an answer's text with its stop strings applied: text that might be the start of a stop
    string is held back until the next piece shows it is not, and nothing after a stop string goes out.

    Each piece is searched only where a stop string could newly end (its own text and the stop strings'
    length before it), so a long reply costs time in its length, not its length squared.
    """

    def __init__(self, stops: Sequence[str]) -> None:
        self.stops = tuple(stops)
        self._reach = max((len(stop) for stop in self.stops), default=1) - 1
        #: every piece given, uncut
        self.received = ""
        #: the answer so far, cut at the first stop string
        self.text = ""
        self.sent = 0
        self.hit = False

    def feed(self, piece: str) -> str:
        """Take a piece of the answer; return the text that may go out now."""
        if self.hit:
            return ""
        start = max(len(self.received) - self._reach, 0)
        self.received += piece
        found = [index for stop in self.stops if (index := self.received.find(stop, start)) >= 0]
        self.hit = bool(found)
        self.text = self.received[: min(found)] if found else self.received
        held = 0 if self.hit else partial_end(self.text, self.stops)
        end = max(self.sent, len(self.text) - held)
        out, self.sent = self.text[self.sent : end], end
        return out

    def finish(self, final_text: str) -> str:
        """The rest to send once the reply is done: the final answer's unseen tail (an engine may settle its
        last characters only at the end) and whatever was held back."""
        tail = final_text[len(self.received) :] if final_text.startswith(self.received) else ""
        out = self.feed(tail)
        rest, self.sent = self.text[self.sent :], len(self.text)
        return out + rest


@dataclass(frozen=True)
class Delta:
    """New text of a streaming reply: the answer's, or a reasoning model's thinking."""

    content: str = ""
    reasoning: str = ""


#: sends one delta to the client
Forward = Callable[[Delta], Awaitable[None]]


@dataclass(frozen=True)
class Outcome:
    """A finished reply as the API reports it: the answer cut at its stop string, and why it ended."""

    reply: Reply
    text: str
    #: OpenAI's ``finish_reason``: ``stop`` (the model's end, a family's rule or a stop string) or ``length``
    finish_reason: str


class ReplyRun:
    """One engine's reply to one request; ``run`` may be awaited once, holding the engine's turn."""

    def __init__(self, engine: ChatEngine, request: ChatRequest, cancel: threading.Event) -> None:
        self.engine = engine
        self.request = request
        self.cancel = cancel
        self.cutter = StopCutter(request.stop)
        #: the engine's reply once its thread has ended (a failed one's partial reply), however the run ended
        self.reply: Reply | None = None

    async def run(self, forward: Forward | None = None) -> Outcome:
        """Generate the reply in a worker thread, sending each new piece through ``forward`` (streaming).

        Leaving early (the client gone, the task cancelled, ``forward`` failing) sets the engine's cancel
        event first, then still waits for the thread, which stops within one token. A failure part-way
        raises the engine's ``GenerationError``.
        """
        sender, receiver = anyio.create_memory_object_stream[Delta](math.inf)
        finished: list[Reply | GenerationError] = []

        def post(delta: Delta) -> None:  # in the worker thread
            # A loop that stopped listening means the client is gone, and cancel is set: the piece goes nowhere.
            if forward is not None:
                with contextlib.suppress(anyio.BrokenResourceError, anyio.ClosedResourceError):
                    anyio.from_thread.run_sync(sender.send_nowait, delta)

        async def generate() -> None:
            with sender:
                try:
                    self.reply = await anyio.to_thread.run_sync(self._generate, post)
                    finished.append(self.reply)
                except GenerationError as exc:
                    self.reply = exc.partial if isinstance(exc.partial, Reply) else None
                    finished.append(exc)

        forward_failure: list[Exception] = []
        async with anyio.create_task_group() as task_group:
            task_group.start_soon(generate)
            with receiver:
                try:
                    async for delta in receiver:
                        assert forward is not None  # nothing is posted without it
                        await forward(delta)
                except Exception as exc:  # raised below as it is, not wrapped in the task group's ExceptionGroup
                    self.cancel.set()  # before the task group waits for the thread
                    forward_failure.append(exc)
                except BaseException:  # cancelled
                    self.cancel.set()
                    raise
        if forward_failure:
            raise forward_failure[0]
        result = finished[0]
        if isinstance(result, GenerationError):
            raise result
        outcome = self._outcome(result)
        if forward is not None:
            rest = self.cutter.finish(outcome.text)
            if rest:
                await forward(Delta(content=rest))
        return outcome

    def check_fits(self) -> None:
        """``BadRequest`` when the newest message alone is longer than the model's context, where the engine
        says what it feeds its model: a served model answers a question it was given whole, or not at all.
        A message past ``MAX_CHARS_PER_TOKEN`` characters a token of the context is refused before it is
        tokenised; one within that is tokenised once, with the conversation's window. (A blocking call: run
        it in a worker thread, in the engine's turn.)"""
        if not isinstance(self.engine, PromptInspecting):
            return
        history, params = self.request.history, self.request.params
        probe = self.engine.prompt_for([{"role": "user", "content": "?"}], params).fit
        if probe is None:  # a family without a window (RWKV carries its state)
            return
        if len(history[-1]["content"]) <= probe.window * MAX_CHARS_PER_TOKEN:
            fit = self.engine.prompt_for(history, params).fit
            if fit is None or not fit.truncated:
                return
        raise BadRequest(
            f"the last message is longer than the model's context of {probe.window} tokens "
            "(with room for the reply's max_tokens); shorten it",
            "messages",
        )

    def _generate(self, post: Callable[[Delta], None]) -> Reply:
        """The engine's reply, in the worker thread; a stop string in the answer cancels the rest."""

        def on_text(piece: str) -> None:
            out = self.cutter.feed(piece)
            if self.cutter.hit:
                self.cancel.set()
            if out:
                post(Delta(content=out))

        def on_reasoning(piece: str) -> None:
            post(Delta(reasoning=piece))

        request = self.request
        return self.engine.reply(
            request.history, request.params, cancel=self.cancel, on_text=on_text, on_reasoning=on_reasoning
        )

    def _outcome(self, reply: Reply) -> Outcome:
        text, stopped = cut_at_stop(reply.text, self.request.stop)
        length = reply.stats.stop_reason is StopReason.LENGTH and not stopped
        return Outcome(reply, text, "length" if length else "stop")


# --- the OpenAI JSON shapes ---------------------------------------------------------------------


def completion_id() -> str:
    return f"chatcmpl-{secrets.token_hex(12)}"


def usage_json(reply: Reply) -> dict[str, Any]:
    """``usage`` from the engine's own counts: the whole prompt, and the tokens generated (thinking included).

    An engine that kept the start of the conversation from the last reply feeds only the rest
    (``ReplyStats.prompt_tokens``); the prompt still counts whole, the kept part as ``cached_tokens``, as
    OpenAI reports a cached prefix.
    """
    stats = reply.stats
    prompt_tokens = len(reply.prompt.input_ids) if reply.prompt is not None else stats.prompt_tokens
    usage: dict[str, Any] = {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": stats.new_tokens,
        "total_tokens": prompt_tokens + stats.new_tokens,
    }
    if prompt_tokens > stats.prompt_tokens:
        usage["prompt_tokens_details"] = {"cached_tokens": prompt_tokens - stats.prompt_tokens}
    if stats.reasoning_tokens:
        usage["completion_tokens_details"] = {"reasoning_tokens": stats.reasoning_tokens}
    return usage


def completion_json(ident: str, model: str, outcome: Outcome) -> dict[str, Any]:
    """A ``chat.completion`` object: the whole reply at once (``stream`` false)."""
    message: dict[str, Any] = {"role": "assistant", "content": outcome.text}
    if outcome.reply.reasoning:
        message["reasoning_content"] = outcome.reply.reasoning
    return {
        "id": ident,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "message": message, "finish_reason": outcome.finish_reason, "logprobs": None}],
        "usage": usage_json(outcome.reply),
    }


@dataclass(frozen=True)
class ChunkMaker:
    """The ``chat.completion.chunk`` objects of one streamed reply, all with its id, time and model."""

    ident: str
    model: str
    include_usage: bool
    created: int

    def chunk(self, delta: dict[str, str], finish_reason: str | None = None) -> dict[str, Any]:
        choice = {"index": 0, "delta": delta, "finish_reason": finish_reason, "logprobs": None}
        return self._base([choice])

    def delta_chunk(self, delta: Delta) -> dict[str, Any]:
        shown = {"reasoning_content": delta.reasoning} if delta.reasoning else {}
        return self.chunk(shown | ({"content": delta.content} if delta.content else {}))

    def usage_chunk(self, reply: Reply) -> dict[str, Any]:
        """The last chunk where usage was asked for: no choices, only the counts (OpenAI's shape)."""
        return self._base([]) | {"usage": usage_json(reply)}

    def _base(self, choices: list[dict[str, Any]]) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": self.ident,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": choices,
        }
        if self.include_usage:
            body["usage"] = None  # every chunk but the last carries a null usage where usage was asked for
        return body


def error_json(message: str, kind: str, code: str | None, param: str | None = None) -> dict[str, Any]:
    """OpenAI's error object: ``{"error": {"message", "type", "param", "code"}}``."""
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}
