"""What a caller needs of an engine: the ``ChatEngine`` protocol, and ``ReplyStream`` to run a reply.

A chat engine is text in, text out, with stats. A model whose weights run in this process
(``engines.local``) and a model behind an OpenAI-compatible server (``engines.remote``) are both one.
Token ids, devices and paths belong to local engines: a caller that wants a local engine's prompt ids
asks through ``PromptInspecting``, which a server engine does not offer.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from zhbench.engines.types import GenerationParams, Message, Prompt, Reply

#: receives each new piece of a reply's text, in order (what it returns is ignored)
TextCallback = Callable[[str], object]


@dataclass(frozen=True)
class EngineInfo:
    """What a loaded engine is: shown in a pane's header and written into transcripts."""

    family: str
    #: the model's folder or file for a local engine; None for a model behind a server
    path: str | None
    device: str | None = None
    dtype: str | None = None
    parameters: int | None = None
    #: bytes the weights take where they were loaded (None where unknown, or not in this process)
    weight_bytes: int | None = None
    #: a family's own facts, e.g. RWKV's ``strategy`` and ``tokenizer``
    details: Mapping[str, str] = field(default_factory=dict)

    def placement(self) -> str:
        """Where and how the model runs, for a header: ``cpu float32``, or a family's own word for it."""
        if "strategy" in self.details:
            return self.details["strategy"]
        return " ".join(part for part in (self.device, self.dtype) if part) or "remote"

    def to_dict(self) -> dict[str, Any]:
        """The flat JSON shape of transcripts and ``ask --json``."""
        return {
            "family": self.family,
            "path": self.path,
            "device": self.device,
            "dtype": self.dtype,
            "parameters": self.parameters,
            "weight_bytes": self.weight_bytes,
            **self.details,
        }


@dataclass(frozen=True)
class LoadOptions:
    """How to load a model: where, in what precision, and a family's own options."""

    device: str | None = None
    dtype: str | None = None
    #: a family's own load options by name (rwkv4: ``strategy``); only those its ``FamilySpec`` declares
    extra: Mapping[str, str] = field(default_factory=dict)


class ChatEngine(Protocol):
    """A loaded model that answers chat histories. ``reply`` may be called from any thread."""

    @property
    def family(self) -> str:
        """The family's registered name."""
        ...

    def describe(self) -> EngineInfo:
        """What this engine is and where it runs."""
        ...

    def presets(self) -> dict[str, GenerationParams]:
        """Named decoding settings upstream offers; the first one is the default."""
        ...

    def chat_commands(self) -> dict[str, str]:
        """Commands a user may type as a message (command -> one line of help); most engines have none."""
        ...

    def reply(
        self,
        history: Sequence[Message],
        params: GenerationParams | None = None,
        *,
        cancel: threading.Event | None = None,
        on_text: TextCallback | None = None,
        on_reasoning: TextCallback | None = None,
    ) -> Reply:
        """One reply to the history's last user message, ``on_text`` called with each new piece of the
        answer and ``on_reasoning`` with each new piece of a reasoning model's thinking.

        Stops within one token or chunk once ``cancel`` is set. A failure part-way raises
        ``GenerationError`` carrying the partial reply.
        """
        ...


#: loads the model at a path (a folder or a file) with the given options; a ``ZhbenchError`` when it cannot
Loader = Callable[[Path, LoadOptions], ChatEngine]


@dataclass(frozen=True)
class MemoryNeed:
    """What loading a model will take, by part, on the device it runs on (and in RAM beside, for a load that
    keeps part of the model there), estimated before loading."""

    device: str  # "cpu", "cuda" or "cuda:N"
    placement: str  # the dtype, or a family's own word for it (an RWKV strategy, a GGUF quantization)
    weights_bytes: int
    cache_bytes: int  # key/value cache, or a recurrent model's state
    overhead_bytes: int
    context: int  # positions the cache is counted at
    ram_bytes: int = 0  # a GPU load's part that stays in RAM (RWKV's embedding and streamed layers)

    @property
    def total_bytes(self) -> int:
        return self.weights_bytes + self.cache_bytes + self.overhead_bytes


@dataclass(frozen=True)
class ModelFacts:
    """What a model's files say of it, for a model list: read from headers, without loading it."""

    parameters: int | None = None
    #: how its weights are stored, where a family publishes several (a GGUF file's ``Q4_K_M``, ``Q8_0``, ``F16``)
    quantization: str | None = None


#: a family's memory estimate: ``(path, options, context)`` -> what loading the model at ``path`` with
#: ``options`` takes with its cache at ``context`` positions (None: the family's default), read from the files'
#: headers without loading them; the device, when ``options`` names none, is the one the load would choose
MemoryEstimate = Callable[[Path, LoadOptions, int | None], MemoryNeed]


@dataclass(frozen=True)
class FamilySpec:
    """A model family: how its files are recognised and loaded. Nothing here imports the model's code."""

    name: str
    #: one line naming the models it runs
    summary: str
    #: whether the files at a path (a folder or a file) have this family's layout; must not raise
    matches_layout: Callable[[Path], bool]
    load: Loader
    #: substrings of a model's name or path (lower case) that tell this family apart from one sharing its layout
    name_hints: tuple[str, ...] = ()
    #: load options of its own (name -> one line of help), passed in ``LoadOptions.extra``
    load_options: Mapping[str, str] = field(default_factory=dict)
    #: ``"module:function"`` writing a tiny random-weight stand-in, ``function(folder, weights_format) -> Path``;
    #: a name rather than the function, so that loading a model never imports stand-in code
    standin: str | None = None
    #: the weight formats its stand-in can be written in, the first the published one
    standin_formats: tuple[str, ...] = ("bin", "safetensors")
    #: options its stand-in writer takes as keywords (name -> one line of help)
    standin_options: Mapping[str, str] = field(default_factory=dict)
    #: the dtype its weights load in when none is asked, by device type (``"cuda"``, ``"mps"``); float32 elsewhere
    dtypes: Mapping[str, str] = field(default_factory=dict)
    #: its own memory estimate; None: a transformers checkpoint's (weights from the headers in ``dtype_on`` the
    #: device, plus the key/value cache its ``config.json`` describes)
    estimate_memory: MemoryEstimate | None = None
    #: the placements to suggest, in order, when an estimate does not fit (each as the load options that ask for
    #: it); None: a smaller dtype on the same GPU, then the CPU
    fallbacks: Callable[[MemoryNeed], Sequence[LoadOptions]] | None = None
    #: what the files at a path say of the model (parameters, quantization) for a model list; None: nothing
    facts: Callable[[Path], ModelFacts] | None = None

    def dtype_on(self, device: str) -> str:
        """The dtype this family loads in on ``device`` (``cpu``, ``cuda``, ``cuda:1``) when none is asked."""
        return self.dtypes.get(device.split(":")[0], "float32")


@runtime_checkable
class PromptInspecting(Protocol):
    """An engine that can show what it would feed its model (a local one: text and token ids)."""

    def prompt_for(self, history: object, params: GenerationParams | None = None) -> Prompt: ...


@runtime_checkable
class MessagesInspecting(Protocol):
    """An engine that sends chat messages rather than a prompt (a server): shows the messages it would send."""

    def messages_for(self, history: object, params: GenerationParams | None = None) -> list[dict[str, str]]: ...


def default_params(engine: ChatEngine) -> GenerationParams:
    """The engine's default decoding settings: its first preset."""
    return next(iter(engine.presets().values()))


class PieceBatcher:
    """Hands streamed text on in batches: a piece goes at once unless the last batch left less than
    ``interval`` ago; then it waits for the next piece (or ``flush``). A fast model sends tens of
    batches a second instead of one per token; a slow one is never held back. A batch carries the
    answer's new text and the thinking's, either of which may be empty.

    Used by the one thread that generates the reply.
    """

    def __init__(self, send: Callable[[str, str], object], interval: float) -> None:
        self.send = send
        self.interval = interval
        self.pending = ""
        self.pending_reasoning = ""
        self.sent_at = float("-inf")  # the first piece goes at once

    def add(self, piece: str) -> None:
        self.pending += piece
        self._maybe_send()

    def add_reasoning(self, piece: str) -> None:
        self.pending_reasoning += piece
        self._maybe_send()

    def _maybe_send(self) -> None:
        now = time.monotonic()
        if now - self.sent_at >= self.interval:
            self.sent_at = now
            self.flush()

    def flush(self) -> None:
        if self.pending or self.pending_reasoning:
            text, reasoning = self.pending, self.pending_reasoning
            self.pending = self.pending_reasoning = ""
            self.send(text, reasoning)


#: batches of a streaming reply leave the generating thread at most this often
BATCH_INTERVAL_S = 1 / 30

_END = object()


class ReplyStream:
    """One reply on its way, its text handed on in batches (``PieceBatcher``): the one way zhbench streams.

    Drive it one of two ways:

    - ``run()`` in the calling thread (the app's thread worker), batches going to ``on_text`` (the answer)
      and ``on_reasoning`` (a reasoning model's thinking);
    - ``start()`` on a thread of its own, then iterate it for the answer's batches (the command line); the
      thinking still goes to ``on_reasoning``, from that thread. An exception in that thread is re-raised
      by the iteration (as ``GenerationError``), never left as a hang.

    ``cancel()`` stops generation within one token or chunk; the partial reply is the result.
    """

    def __init__(
        self,
        engine: ChatEngine,
        history: Sequence[Message],
        params: GenerationParams | None = None,
        *,
        on_text: TextCallback | None = None,
        on_reasoning: TextCallback | None = None,
        cancel: threading.Event | None = None,
        interval: float = BATCH_INTERVAL_S,
    ) -> None:
        self.engine = engine
        self.history = history
        self.params = params
        self._cancel = cancel or threading.Event()
        self._on_text = on_text
        self._on_reasoning = on_reasoning
        self._interval = interval
        self._pieces: queue.SimpleQueue[object] | None = None
        self._thread: threading.Thread | None = None
        self._result: Reply | None = None
        self._error: BaseException | None = None

    def run(self) -> Reply:
        """Generate the reply in this thread; batches go to the callbacks, the last ones before this returns."""
        batcher = PieceBatcher(self._send, self._interval)
        try:
            reply = self.engine.reply(
                self.history, self.params, cancel=self._cancel, on_text=batcher.add, on_reasoning=batcher.add_reasoning
            )
        finally:
            batcher.flush()
        self._result = reply
        return reply

    def _send(self, text: str, reasoning: str) -> None:
        if reasoning and self._on_reasoning is not None:
            self._on_reasoning(reasoning)
        if text and self._on_text is not None:
            self._on_text(text)

    def start(self) -> ReplyStream:
        """Generate on a thread of its own; iterate this stream for the batches."""
        if self._thread is not None:
            raise RuntimeError("the reply has already started")
        pieces: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._pieces, self._on_text = pieces, pieces.put
        self._thread = threading.Thread(target=self._run_in_thread, name=f"zhbench-reply-{self.engine.family}")
        self._thread.daemon = True
        self._thread.start()
        return self

    def _run_in_thread(self) -> None:
        assert self._pieces is not None
        try:
            self.run()
        except BaseException as exc:  # handed to the consumer's thread
            self._error = exc
        finally:
            self._pieces.put(_END)

    def __iter__(self) -> Iterator[str]:
        if self._pieces is None or self._thread is None:
            raise RuntimeError("start() the stream before iterating it")
        while True:
            piece = self._pieces.get()
            if piece is _END:
                break
            assert isinstance(piece, str)
            yield piece
        self._thread.join()
        if self._error is not None:
            raise self._error

    def cancel(self) -> None:
        self._cancel.set()

    def wait(self) -> Reply:
        """Drain a started stream and return the reply (raising its error, if it failed)."""
        for _ in self:
            pass
        return self.result

    @property
    def result(self) -> Reply:
        if self._result is None:
            if self._error is not None:
                raise self._error
            raise RuntimeError("the reply has not finished")
        return self._result
