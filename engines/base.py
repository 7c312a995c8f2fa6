"""The engine core: what every model family shares (timing, stop rules, streaming, cancel, errors).

A family supplies its prompt builder, its token source and its decoder; ``Engine.reply`` drives them.
``ReplyStream`` runs a reply on a background thread and hands its text pieces to the caller.
"""

from __future__ import annotations

import contextlib
import dataclasses
import queue
import secrets
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, ClassVar

from engines.cpu_share import CPU_SHARE
from engines.errors import GenerationError
from engines.types import (
    GenerationParams,
    Message,
    Prompt,
    Reply,
    ReplyStats,
    StopReason,
    validate_history,
)

TextCallback = Callable[[str], None]


class Engine(ABC):
    """One loaded model of one family. Replies run one at a time; ``reply`` may be called from any thread."""

    #: the family's id, as used by ``--family``
    family: ClassVar[str]
    #: substrings of a model's name or path (lower case) that tell this family apart
    name_hints: ClassVar[tuple[str, ...]] = ()
    #: whether ``load`` takes a ``strategy`` keyword (where and in what precision each layer runs)
    takes_strategy: ClassVar[bool] = False

    def __init__(self, model_path: Path, device: str, dtype: str) -> None:
        self.model_path = model_path
        self.device = device
        self.dtype = dtype
        self._reply_lock = threading.Lock()
        self._cuda_stream: Any = None  # made at the first reply on a GPU

    # --- what a family provides -------------------------------------------------------------

    @classmethod
    @abstractmethod
    def matches_layout(cls, path: Path) -> bool:
        """Whether the files at ``path`` (a folder or a file) have this family's layout."""

    @classmethod
    @abstractmethod
    def load(cls, path: Path, *, device: str | None = None, dtype: str | None = None) -> Engine:
        """Load the model at ``path``; a ``ModelLoadError`` naming the file when it cannot."""

    @classmethod
    @abstractmethod
    def write_standin(cls, folder: Path, *, weights_format: str = "bin") -> Path:
        """Write a tiny random-weight model in the file layout the real checkpoint ships; return its path."""

    @abstractmethod
    def default_params(self) -> GenerationParams:
        """The decoding settings upstream uses for this model."""

    def presets(self) -> dict[str, GenerationParams]:
        """Named decoding settings upstream offers (the first one is the default)."""
        return {"default": self.default_params()}

    @abstractmethod
    def build_prompt(self, history: list[Message], params: GenerationParams) -> Prompt:
        """What the model is fed for this history, built exactly as upstream builds it."""

    @abstractmethod
    def _token_source(self, prompt: Prompt, params: GenerationParams, cancel: threading.Event) -> Iterator[int]:
        """Yield generated token ids one at a time, lazily: no work is done for a token nobody asks for."""

    @abstractmethod
    def decode_reply(self, output_ids: Sequence[int]) -> str:
        """The reply text for the ids generated so far, as upstream shows it."""

    @abstractmethod
    def is_end_token(self, token_id: int) -> bool:
        """Whether this token ends the reply (it is not part of the reply text)."""

    def stop_rule(self, text: str) -> str | None:
        """A family's text stop rule: the final reply text if ``text`` ends the reply, else None."""
        return None

    def streamable(self, text: str) -> str:
        """The part of a reply in progress that later tokens cannot change (a family may hold back a tail)."""
        return text

    def parameter_count(self) -> int | None:
        return None

    def weight_bytes(self) -> int | None:
        """Bytes the loaded weights take in memory (on the engine's device), when the family can tell."""
        return None

    def chat_commands(self) -> dict[str, str]:
        """Commands a user may type as a message (command -> one line of help); most families have none."""
        return {}

    def computes_on_cpu(self) -> bool:
        """Whether replies run on the CPU, sharing its cores with other replies (``engines.cpu_share``)."""
        return self.device == "cpu"

    def fed_token_count(self, prompt: Prompt) -> int:
        """How many prompt tokens this reply feeds the model (a family that carries state feeds fewer)."""
        return len(prompt.input_ids)

    def _reply_finished(self, prompt: Prompt, reply: Reply) -> None:  # noqa: B027 (a hook, empty by default)
        """Hook: a reply ended (any way but an error)."""

    # --- what every family shares -----------------------------------------------------------

    def describe(self) -> dict[str, Any]:
        return {
            "family": self.family,
            "path": str(self.model_path),
            "device": self.device,
            "dtype": self.dtype,
            "parameters": self.parameter_count(),
            "weight_bytes": self.weight_bytes(),
        }

    def prompt_for(self, history: object, params: GenerationParams | None = None) -> Prompt:
        return self.build_prompt(validate_history(history), params or self.default_params())

    def reply(
        self,
        history: object,
        params: GenerationParams | None = None,
        *,
        cancel: threading.Event | None = None,
        on_text: TextCallback | None = None,
    ) -> Reply:
        """Generate one reply to the history's last user message, calling ``on_text`` with each new piece.

        Stops within one token once ``cancel`` is set. On an exception the partial reply is kept and
        raised inside a ``GenerationError``.
        """
        messages = validate_history(history)
        params = params or self.default_params()
        params.validate()
        if params.seed is None:
            params = dataclasses.replace(params, seed=secrets.randbelow(2**31))
        cancel = cancel or threading.Event()
        with self._reply_lock, self._compute_place():
            return self._run_reply(messages, params, cancel, on_text)

    def _compute_place(self) -> contextlib.AbstractContextManager[object]:
        """Where a reply computes: its share of the CPU's cores, or on a GPU the engine's own CUDA stream,
        so that two engines on one card do not queue behind each other on the default stream."""
        if self.computes_on_cpu():
            return CPU_SHARE.taking_part()
        if self.device.startswith("cuda"):
            return _own_cuda_stream(self)
        return contextlib.nullcontext()

    def start_reply(self, history: object, params: GenerationParams | None = None) -> ReplyStream:
        return ReplyStream(self, history, params)

    def _run_reply(
        self,
        messages: list[Message],
        params: GenerationParams,
        cancel: threading.Event,
        on_text: TextCallback | None,
    ) -> Reply:
        started = time.perf_counter()
        on_cpu = self.computes_on_cpu()
        first_token_at: float | None = None
        output_ids: list[int] = []
        reply_ids: list[int] = []
        text = ""
        shown = ""
        stop: StopReason | None = None
        prompt: Prompt | None = None

        def finish(reason: StopReason, error: str | None = None) -> Reply:
            total = time.perf_counter() - started
            stats = ReplyStats(
                prompt_tokens=self.fed_token_count(prompt) if prompt else 0,
                new_tokens=len(output_ids),
                ttft_s=None if first_token_at is None else first_token_at - started,
                tokens_per_s=len(output_ids) / total if total > 0 else 0.0,
                total_s=total,
                stop_reason=reason,
            )
            return Reply(self.family, text, list(output_ids), params, stats, error, prompt)

        try:
            prompt = self.build_prompt(messages, params)
            tokens = self._token_source(prompt, params, cancel)
            try:
                while stop is None:
                    if cancel.is_set():
                        stop = StopReason.CANCELLED
                        break
                    if on_cpu:
                        CPU_SHARE.apply()  # this thread's share of the cores, as of this token
                    token = next(tokens, None)
                    if token is None:
                        stop = StopReason.CANCELLED if cancel.is_set() else StopReason.LENGTH
                        break
                    if first_token_at is None:
                        first_token_at = time.perf_counter()
                    output_ids.append(token)
                    if self.is_end_token(token):
                        stop = StopReason.EOS
                        break
                    reply_ids.append(token)
                    text = self.decode_reply(reply_ids)
                    ruled = self.stop_rule(text)
                    if ruled is not None:
                        text, stop = ruled, StopReason.STOP_RULE
                    elif len(output_ids) >= params.max_new_tokens:
                        stop = StopReason.LENGTH
                    final = stop is not None
                    shown = _stream_piece(text if final else self.streamable(text), shown, on_text, final=final)
            finally:
                close = getattr(tokens, "close", None)
                if close is not None:
                    close()
        except Exception as exc:  # the reply failed: keep what came and say why
            reply = finish(StopReason.ERROR, f"{type(exc).__name__}: {exc}")
            raise GenerationError(f"{self.family} failed while generating: {reply.error}", reply) from exc
        reply = finish(stop)
        assert prompt is not None
        try:
            self._reply_finished(prompt, reply)
        except Exception as exc:  # a family's bookkeeping after the reply (RWKV runs the model there)
            raise GenerationError(f"{self.family} failed after the reply: {type(exc).__name__}: {exc}", reply) from exc
        return reply


@contextlib.contextmanager
def _own_cuda_stream(engine: Engine) -> Iterator[None]:
    """Run the block on a CUDA stream of the engine's own (made at its first reply); untested here: no GPU."""
    import torch

    if engine._cuda_stream is None:
        engine._cuda_stream = torch.cuda.Stream(device=engine.device)
    stream = engine._cuda_stream
    stream.wait_stream(torch.cuda.current_stream(stream.device))  # weights placed on the default stream
    with torch.cuda.stream(stream):
        yield


def _stream_piece(text: str, shown: str, on_text: TextCallback | None, *, final: bool) -> str:
    """Send the part of ``text`` not yet shown, once it decodes to whole characters; return what is shown.

    Text that a later token could still change (a partial UTF-8 sequence shows as U+FFFD) waits. If a
    family's decoding rewrites text already shown, nothing more streams; the final reply text is
    authoritative.
    """
    if on_text is None or not text.startswith(shown):
        return shown
    if not final and text.endswith("\ufffd"):
        return shown
    piece = text[len(shown) :]
    if piece:
        on_text(piece)
    return text


_END = object()


class ReplyStream:
    """A reply generated on a background thread; iterate it for text pieces, then read ``result``.

    An exception in the generating thread is re-raised by the iteration (as ``GenerationError``),
    never left as a hang. ``cancel()`` stops generation within one token.
    """

    def __init__(self, engine: Engine, history: object, params: GenerationParams | None) -> None:
        self._pieces: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._cancel = threading.Event()
        self._result: Reply | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(
            target=self._run, args=(engine, history, params), name=f"zhbench-reply-{engine.family}", daemon=True
        )
        self._thread.start()

    def _run(self, engine: Engine, history: object, params: GenerationParams | None) -> None:
        try:
            self._result = engine.reply(history, params, cancel=self._cancel, on_text=self._pieces.put)
        except BaseException as exc:  # handed to the consumer's thread
            self._error = exc
        finally:
            self._pieces.put(_END)

    def __iter__(self) -> Iterator[str]:
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
        """Drain the stream and return the reply (raising its error, if it failed)."""
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
