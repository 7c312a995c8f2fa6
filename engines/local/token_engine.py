"""What every model run in this process shares: timing, end ids, stop rules, streaming, cancel, errors.

A family supplies its prompt builder and, per reply, a ``Generation``: the token source and how its ids
read as text. ``TokenEngine.reply`` drives it. Everything a reply needs to remember lives in its
``Generation``; what an engine carries from one reply to the next (a key/value cache, an RNN state) is
handed over explicitly in ``start_generation`` and ``generation_finished``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import secrets
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from zhbench.engines.api import EngineInfo, ReplyStream, TextCallback
from zhbench.engines.errors import GenerationError, ZhbenchError
from zhbench.engines.local.cpu_share import CPU_SHARE
from zhbench.engines.types import (
    GenerationParams,
    Message,
    Prompt,
    Reply,
    ReplyStats,
    StopReason,
    validate_history,
)


class Generation(ABC):
    """One reply's decoding: the ids it generates and how they read as text. Made fresh for every reply."""

    def __init__(self, prompt: Prompt) -> None:
        self.prompt = prompt

    @abstractmethod
    def tokens(self) -> Iterator[int]:
        """Generated token ids one at a time, lazily: no work is done for a token nobody asks for."""

    @abstractmethod
    def text(self, reply_ids: Sequence[int]) -> str:
        """The reply text of the ids generated so far (end ids left out), as upstream shows it."""

    def stop_rule(self, text: str) -> str | None:
        """A family's text stop rule: the final reply text if ``text`` ends the reply, else None."""
        return None

    def streamable(self, text: str) -> str:
        """The part of a reply in progress that later tokens cannot change (a family may hold back a tail)."""
        return text

    def split(self, text: str) -> tuple[str, str]:
        """``(reasoning, answer)`` of the text so far: a reasoning model's thinking, and the rest."""
        return "", text

    @property
    def fed_tokens(self) -> int:
        """How many prompt tokens this reply fed the model (a family that carries state feeds fewer)."""
        return len(self.prompt.input_ids)


class TokenEngine(ABC):
    """One loaded model of one family, decoding token by token in this process.

    Replies run one at a time; ``reply`` may be called from any thread. Satisfies ``ChatEngine`` and
    ``PromptInspecting``.
    """

    #: the family's registered name
    family: ClassVar[str]

    def __init__(self, model_path: Path, device: str, dtype: str) -> None:
        self.model_path = model_path
        self.device = device
        self.dtype = dtype
        #: ids that end a reply (they are not part of its text); a family sets them when it loads
        self.end_ids: frozenset[int] = frozenset()
        self._reply_lock = threading.Lock()
        self._cuda_stream: Any = None  # made at the first reply on a GPU

    # --- what a family provides -------------------------------------------------------------

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
    def start_generation(self, prompt: Prompt, params: GenerationParams, cancel: threading.Event) -> Generation:
        """The decoding of one reply to ``prompt`` (nothing runs until its tokens are asked for)."""

    def generation_finished(self, generation: Generation, reply: Reply) -> None:  # noqa: B027 (a hook)
        """A reply ended (any way but an error): a family that carries state keeps what it needs here."""

    def parameter_count(self) -> int | None:
        return None

    def weight_bytes(self) -> int | None:
        """Bytes the loaded weights take in memory (on the engine's device), when the family can tell."""
        return None

    def details(self) -> dict[str, str]:
        """A family's own facts for ``describe()`` (e.g. RWKV's strategy and tokenizer)."""
        return {}

    def chat_commands(self) -> dict[str, str]:
        """Commands a user may type as a message (command -> one line of help); most families have none."""
        return {}

    def computes_on_cpu(self) -> bool:
        """Whether replies run on the CPU, sharing its cores with other replies (``engines.local.cpu_share``)."""
        return self.device == "cpu"

    # --- what every family shares -----------------------------------------------------------

    def describe(self) -> EngineInfo:
        return EngineInfo(
            family=self.family,
            path=str(self.model_path),
            device=self.device,
            dtype=self.dtype,
            parameters=self.parameter_count(),
            weight_bytes=self.weight_bytes(),
            details=self.details(),
        )

    def prompt_for(self, history: object, params: GenerationParams | None = None) -> Prompt:
        return self.build_prompt(validate_history(history), params or self.default_params())

    def reply(
        self,
        history: Sequence[Message],
        params: GenerationParams | None = None,
        *,
        cancel: threading.Event | None = None,
        on_text: TextCallback | None = None,
        on_reasoning: TextCallback | None = None,
    ) -> Reply:
        """Generate one reply to the history's last user message, calling ``on_text`` with each new piece
        of the answer and ``on_reasoning`` with each new piece of the thinking (where the family splits one).

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
            return self._run_reply(messages, params, cancel, Channels(on_text, on_reasoning))

    def start_reply(self, history: Sequence[Message], params: GenerationParams | None = None) -> ReplyStream:
        """The reply generated on a thread of its own: iterate the stream for its text."""
        return ReplyStream(self, history, params).start()

    def _compute_place(self) -> contextlib.AbstractContextManager[object]:
        """Where a reply computes: its share of the CPU's cores, or on a GPU the engine's own CUDA stream,
        so that two engines on one card do not queue behind each other on the default stream."""
        if self.computes_on_cpu():
            return CPU_SHARE.taking_part()
        if self.device.startswith("cuda"):
            return _own_cuda_stream(self)
        return contextlib.nullcontext()

    def _run_reply(
        self,
        messages: list[Message],
        params: GenerationParams,
        cancel: threading.Event,
        channels: Channels,
    ) -> Reply:
        started = time.perf_counter()
        on_cpu = self.computes_on_cpu()
        end_ids = self.end_ids
        first_token_at: float | None = None
        output_ids: list[int] = []
        reply_ids: list[int] = []
        text = ""
        shown = Shown()
        thinking_tokens = 0
        stop: StopReason | None = None
        prompt: Prompt | None = None
        generation: Generation | None = None

        def finish(reason: StopReason, error: str | None = None) -> Reply:
            total = time.perf_counter() - started
            reasoning, answer = generation.split(text) if generation else ("", text)
            stats = ReplyStats(
                prompt_tokens=generation.fed_tokens if generation else 0,
                new_tokens=len(output_ids),
                ttft_s=None if first_token_at is None else first_token_at - started,
                tokens_per_s=len(output_ids) / total if total > 0 else 0.0,
                total_s=total,
                stop_reason=reason,
                reasoning_tokens=thinking_tokens if reasoning else 0,
                **ReplyStats.context_of(prompt),
            )
            raw = text if reasoning else None
            return Reply(self.family, answer, params, stats, error, list(output_ids), prompt, reasoning, raw)

        try:
            prompt = self.build_prompt(messages, params)
            generation = self.start_generation(prompt, params, cancel)
            tokens = generation.tokens()
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
                    if token in end_ids:
                        stop = StopReason.EOS
                        break
                    reply_ids.append(token)
                    text = generation.text(reply_ids)
                    ruled = generation.stop_rule(text)
                    if ruled is not None:
                        text, stop = ruled, StopReason.STOP_RULE
                    elif len(output_ids) >= params.max_new_tokens:
                        stop = StopReason.LENGTH
                    final = stop is not None
                    reasoning, answer = generation.split(text if final else generation.streamable(text))
                    if not answer:  # thinking, as it turns out once the reply has any (see finish)
                        thinking_tokens += 1
                    shown.reasoning = _stream_piece(reasoning, shown.reasoning, channels.reasoning, final=final)
                    shown.answer = _stream_piece(answer, shown.answer, channels.text, final=final)
            finally:
                close = getattr(tokens, "close", None)
                if close is not None:
                    close()
        except Exception as exc:  # the reply failed: keep what came and say why (our own errors say it in full)
            said = str(exc) if isinstance(exc, ZhbenchError) else f"{type(exc).__name__}: {exc}"
            reply = finish(StopReason.ERROR, said)
            raise GenerationError(f"{self.family} failed while generating: {reply.error}", reply) from exc
        reply = finish(stop)
        try:
            self.generation_finished(generation, reply)
        except Exception as exc:  # a family's bookkeeping after the reply (RWKV runs the model there)
            raise GenerationError(f"{self.family} failed after the reply: {type(exc).__name__}: {exc}", reply) from exc
        return reply


@dataclass(frozen=True)
class Channels:
    """Where a reply's text streams: the answer, and a reasoning model's thinking."""

    text: TextCallback | None
    reasoning: TextCallback | None


@dataclass
class Shown:
    """What has streamed so far of each channel."""

    answer: str = ""
    reasoning: str = ""


@contextlib.contextmanager
def _own_cuda_stream(engine: TokenEngine) -> Iterator[None]:
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
