"""A model behind an OpenAI-compatible server (vLLM, SGLang, llama.cpp's server, Ollama, hosted APIs) as a
``ChatEngine``: ``POST /chat/completions`` streamed over server-sent events, ``GET /models`` to check the id.

A reply is one streamed request with ``stream_options.include_usage``. The connection closes as soon as
the caller cancels (checked at every chunk), so the server sees the request cancelled and stops. The
server's thinking (``reasoning_content``, or ``reasoning``) is kept apart from the answer as the local
chat-template family keeps it; it is not sent back in the next turn, as these APIs ask.
"""

from __future__ import annotations

import dataclasses
import json
import secrets
import threading
import time
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from zhbench.engines.api import EngineInfo, TextCallback
from zhbench.engines.errors import GenerationError, RemoteError
from zhbench.engines.remote.reading import Bounds, event_data
from zhbench.engines.remote.server import (
    RemoteServer,
    SecretFilter,
    blank_secrets,
    error_message,
    list_models,
    shorten,
    status_failure,
    transport_failure,
)
from zhbench.engines.types import GenerationParams, Message, Reply, ReplyStats, StopReason, validate_history

FAMILY = "openai-compat"

#: ``finish_reason`` as zhbench's stop reasons; any other (``content_filter``, ``tool_calls``) is the server's rule
FINISH_REASONS = {"stop": StopReason.EOS, "eos": StopReason.EOS, "length": StopReason.LENGTH}
#: the delta fields servers put a reasoning model's thinking in (vLLM and DeepSeek; llama.cpp and Ollama)
REASONING_FIELDS = ("reasoning_content", "reasoning")
#: how much of a malformed stream line a message quotes
MALFORMED_CHARS = 60
#: the statuses of ``GET /models`` that mean "this server does not list its models", not "it refused"
NO_LISTING = frozenset({404, 405, 501})


@dataclass(frozen=True)
class RemoteParams(GenerationParams):
    """What the chat-completions API can carry: temperature (greedy sends 0), top_p, max tokens, seed, stop
    strings and a system prompt. The local decoders' other settings have no field there and are refused.

    Temperature, top_p and max tokens are None until someone sets them (a pane, a preset, ``--set``, the
    config): a request leaves them out, so the server's own defaults apply (vLLM reads the model's
    ``generation_config.json``; a hosted API has its own)."""

    temperature: float | None = None  # type: ignore[assignment]
    top_p: float | None = None  # type: ignore[assignment]
    max_new_tokens: int | None = None  # type: ignore[assignment]
    #: sent as a ``system`` message before the history
    system_prompt: str = ""
    #: strings that end the reply, separated by ``|``
    stop: str = ""

    fixed_settings: ClassVar[frozenset[str]] = frozenset(
        {"top_k", "repetition_penalty", "num_beams", "length_penalty", "no_repeat_ngram_size"}
    )
    fixed_because: ClassVar[str] = "its API has no field for it"
    prompt_settings: ClassVar[frozenset[str]] = frozenset({"system_prompt"})

    def stop_strings(self) -> list[str]:
        return [text for text in self.stop.split("|") if text]

    def problems(self) -> dict[str, str]:
        """The generic checks, on the settings that are set (an unset one is the server's business)."""
        unset = {name: getattr(GenerationParams, name) for name in SERVER_DEFAULTS if getattr(self, name) is None}
        return GenerationParams.problems(dataclasses.replace(self, **unset))

    def server_defaults(self) -> bool:
        """Whether the sampling is all the server's own: nothing set, and not greedy."""
        return not self.greedy and all(getattr(self, name) is None for name in SERVER_DEFAULTS)


#: the settings a request leaves out until they are set, so that the server's defaults apply
SERVER_DEFAULTS = ("temperature", "top_p", "max_new_tokens")


def request_body(
    model: str, messages: list[dict[str, str]], params: RemoteParams, extra: Mapping[str, Any]
) -> dict[str, Any]:
    """The JSON of one streamed chat request: the settings that are set, nothing for the rest (the server's
    defaults apply); the config's ``extra`` fields go along, zhbench's own win."""
    settings: dict[str, Any] = {"max_tokens": params.max_new_tokens, "seed": params.seed}
    if params.greedy:
        settings["temperature"] = 0  # what these servers take for argmax decoding
    else:
        settings |= {"temperature": params.temperature, "top_p": params.top_p}
    if params.stop_strings():
        settings["stop"] = params.stop_strings()
    body: dict[str, Any] = {
        **extra,
        "model": model,
        "messages": messages,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    return body | {name: value for name, value in settings.items() if value is not None}


@dataclass(frozen=True)
class Chunk:
    """What one ``data:`` line of the stream says."""

    text: str = ""
    reasoning: str = ""
    finish_reason: str | None = None
    usage: Mapping[str, Any] | None = None
    error: str | None = None
    #: the model id the server says answered (an alias may resolve to a dated version)
    model: str | None = None


def read_chunk(data: str) -> Chunk:
    """One ``chat.completion.chunk`` (or an error object sent mid-stream); ``ValueError`` if it is not JSON."""
    body = json.loads(data)
    message = error_message(body)
    if message is not None:
        return Chunk(error=message)
    if not isinstance(body, Mapping):
        raise ValueError("a chunk is not a JSON object")
    choices = body.get("choices")
    choice = _mapping(choices[0] if isinstance(choices, list) and choices else None)  # the usage chunk has none
    delta = _mapping(choice.get("delta"))
    usage = body.get("usage")
    return Chunk(
        text=_text(delta.get("content")),
        reasoning="".join(_text(delta.get(name)) for name in REASONING_FIELDS),
        finish_reason=choice.get("finish_reason") if isinstance(choice.get("finish_reason"), str) else None,
        usage=usage if isinstance(usage, Mapping) else None,
        model=body.get("model") if isinstance(body.get("model"), str) and body.get("model") else None,
    )


def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""


def estimate_tokens(text: str) -> int:
    """A rough token count for a server that reports none: a CJK character is about one token, other text
    about four characters to one."""
    wide = sum(1 for ch in text if unicodedata.east_asian_width(ch) in ("W", "F"))
    return wide + (len(text) - wide + 3) // 4


#: the most tokens a server's ``usage`` may report before the number is taken for garbage
MAX_USAGE_TOKENS = 10**9


def _count(value: object) -> int | None:
    """A token count from ``usage``, or None for anything that cannot be one (negative, absurd, not whole)."""
    ok = isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_USAGE_TOKENS
    return value if ok else None  # type: ignore[return-value]


@dataclass
class ReplyProgress:
    """One reply as it streams in: its text, thinking, timings and what the server reported. Text and
    thinking pass a ``SecretFilter`` each before they are kept or handed on."""

    secrets: Sequence[str] = ()
    started: float = field(default_factory=time.perf_counter)
    first_at: float | None = None
    text: str = ""
    reasoning: str = ""
    #: chunks that carried text (servers send about one token per chunk)
    text_chunks: int = 0
    reasoning_chunks: int = 0
    finish_reason: str | None = None
    usage: Mapping[str, Any] | None = None
    #: the model id the server reported in its chunks
    model: str | None = None
    done: bool = False

    def __post_init__(self) -> None:
        self._text_filter = SecretFilter(self.secrets)
        self._reasoning_filter = SecretFilter(self.secrets)

    @property
    def chunks(self) -> int:
        return self.text_chunks + self.reasoning_chunks

    def take(self, chunk: Chunk, on_text: TextCallback | None, on_reasoning: TextCallback | None) -> None:
        if (chunk.text or chunk.reasoning) and self.first_at is None:
            self.first_at = time.perf_counter()
        if chunk.reasoning:
            self.reasoning_chunks += 1
            self._add_reasoning(self._reasoning_filter.feed(chunk.reasoning), on_reasoning)
        if chunk.text:
            self.text_chunks += 1
            self._add_text(self._text_filter.feed(chunk.text), on_text)
        self.finish_reason = chunk.finish_reason or self.finish_reason
        self.usage = chunk.usage or self.usage
        self.model = blank_secrets(chunk.model, self.secrets) if chunk.model else self.model

    def finish(self, on_text: TextCallback | None, on_reasoning: TextCallback | None) -> None:
        """Hand on what the secret filters held back: the reply ended, however it did."""
        self._add_reasoning(self._reasoning_filter.flush(), on_reasoning)
        self._add_text(self._text_filter.flush(), on_text)

    def _add_text(self, text: str, on_text: TextCallback | None) -> None:
        if text:
            self.text += text
            if on_text is not None:
                on_text(text)

    def _add_reasoning(self, text: str, on_reasoning: TextCallback | None) -> None:
        if text:
            self.reasoning += text
            if on_reasoning is not None:
                on_reasoning(text)

    def stats(self, reason: StopReason, prompt_text: str) -> ReplyStats:
        """The reply's stats: times measured here, token counts from ``usage`` where they are believable,
        or else estimated."""
        total = time.perf_counter() - self.started
        usage = self.usage or {}
        new_tokens, prompt_tokens = _count(usage.get("completion_tokens")), _count(usage.get("prompt_tokens"))
        details = usage.get("completion_tokens_details")
        thinking = _count(details.get("reasoning_tokens")) if isinstance(details, Mapping) else None
        estimated = new_tokens is None
        if new_tokens is None:
            new_tokens = self.chunks
        if thinking is None or thinking > new_tokens:
            thinking = min(self.reasoning_chunks, new_tokens)
        return ReplyStats(
            prompt_tokens=prompt_tokens if prompt_tokens is not None else estimate_tokens(prompt_text),
            new_tokens=new_tokens,
            ttft_s=None if self.first_at is None else self.first_at - self.started,
            tokens_per_s=new_tokens / total if total > 0 else 0.0,
            total_s=total,
            stop_reason=reason,
            reasoning_tokens=thinking if self.reasoning else 0,
            estimated=estimated,
        )


class OpenAICompatEngine:
    """One model on one OpenAI-compatible server. Satisfies ``ChatEngine`` and ``MessagesInspecting``;
    replies may run at once from several threads (each has its own request)."""

    family = FAMILY

    def __init__(self, server: RemoteServer, model: str, served_model: str | None = None) -> None:
        import httpx

        self.server = server
        self.model = model
        #: the model id as the server lists it (None where it does not list its models)
        self.served_model = served_model
        # One connection pool per engine; httpx clients are safe to share between threads.
        self._client = httpx.Client(timeout=server.timeouts())

    def describe(self) -> EngineInfo:
        details = {"server": self.server.label, "base_url": self.server.public_url}
        return EngineInfo(family=FAMILY, path=None, details=details | {"server_model": self.served_model or self.model})

    def presets(self) -> dict[str, GenerationParams]:
        """The server's own defaults (nothing sent), and greedy decoding."""
        return {"server-defaults": RemoteParams(), "greedy": RemoteParams(greedy=True)}

    def chat_commands(self) -> dict[str, str]:
        return {}

    def messages_for(self, history: object, params: GenerationParams | None = None) -> list[dict[str, str]]:
        """The ``messages`` a request for this history sends: the system prompt, then the history."""
        settings = remote_params(params)
        system = [{"role": "system", "content": settings.system_prompt}] if settings.system_prompt else []
        return system + [{"role": m["role"], "content": m["content"]} for m in validate_history(history)]

    def reply(
        self,
        history: Sequence[Message],
        params: GenerationParams | None = None,
        *,
        cancel: threading.Event | None = None,
        on_text: TextCallback | None = None,
        on_reasoning: TextCallback | None = None,
    ) -> Reply:
        """One streamed reply. Stops at the first chunk after ``cancel`` is set, closing the connection, and
        once ``max_new_tokens`` chunks have come (a server may ignore ``max_tokens``); a failure (before or
        part-way, the server's deadline passed included) raises ``GenerationError`` with what came, and one
        line saying why."""
        settings = remote_params(params)
        settings.validate()
        if settings.seed is None:
            settings = dataclasses.replace(settings, seed=secrets.randbelow(2**31))
        messages = self.messages_for(history, settings)
        prompt_text = "\n".join(message["content"] for message in messages)
        body = request_body(self.model, messages, settings, self.server.extra)
        progress = ReplyProgress(self.server.secrets())
        try:
            reason = self._stream(
                body, progress, settings.max_new_tokens, cancel or threading.Event(), on_text, on_reasoning
            )
        except RemoteError as exc:
            progress.finish(on_text, on_reasoning)
            partial = self._reply(progress, settings, progress.stats(StopReason.ERROR, prompt_text), str(exc))
            raise GenerationError(str(exc), partial) from None
        progress.finish(on_text, on_reasoning)
        return self._reply(progress, settings, progress.stats(reason, prompt_text), None)

    def _reply(self, progress: ReplyProgress, params: RemoteParams, stats: ReplyStats, error: str | None) -> Reply:
        return Reply(
            FAMILY, progress.text, params, stats, error, reasoning=progress.reasoning, served_model=progress.model
        )

    def _stream(
        self,
        body: dict[str, Any],
        progress: ReplyProgress,
        max_tokens: int | None,
        cancel: threading.Event,
        on_text: TextCallback | None,
        on_reasoning: TextCallback | None,
    ) -> StopReason:
        """Run the request; how the reply ended, or a ``RemoteError``. Leaving the ``with`` closes the
        connection, also when the reply is cancelled or cut part-way."""
        import httpx

        bounds = Bounds("the reply", self.server.deadline_s, cancel=cancel)
        headers = self.server.headers() | {"Accept": "text/event-stream", "Cache-Control": "no-store"}
        try:
            with self._client.stream(
                "POST", self.server.endpoint("chat/completions"), json=body, headers=headers
            ) as response:
                if response.status_code != 200:
                    raise status_failure(self.server, response, model=self.model)
                for data in event_data(self.server, response, bounds):
                    if cancel.is_set():
                        return StopReason.CANCELLED
                    if data == "[DONE]":
                        progress.done = True
                        break
                    chunk = self._chunk(data)
                    if max_tokens is not None and progress.chunks >= max_tokens and (chunk.text or chunk.reasoning):
                        return StopReason.LENGTH  # the server ignores max_tokens: stop reading here
                    progress.take(chunk, on_text, on_reasoning)
        except httpx.HTTPError as exc:
            raise transport_failure(self.server, exc) from None
        return self._end_reason(progress, cancel)

    def _chunk(self, data: str) -> Chunk:
        try:
            chunk = read_chunk(data)
        except (ValueError, RecursionError):
            line = shorten(self.server.scrub(data), MALFORMED_CHARS)  # blanked before it is cut
            raise self.server.failure(f"a malformed line in the stream: {line!r}") from None
        if chunk.error is not None:
            raise self.server.failure(f"the server stopped the reply: {shorten(self.server.scrub(chunk.error))}")
        return chunk

    def _end_reason(self, progress: ReplyProgress, cancel: threading.Event) -> StopReason:
        if progress.finish_reason is not None:
            return FINISH_REASONS.get(progress.finish_reason, StopReason.STOP_RULE)
        if cancel.is_set():
            return StopReason.CANCELLED
        if not progress.done:
            raise self.server.failure("the stream ended before the reply did (no finish_reason, no [DONE])")
        return StopReason.EOS


def remote_params(params: GenerationParams | None) -> RemoteParams:
    """The settings as ``RemoteParams``: generic ones keep their values, the API's own take their defaults."""
    if params is None:
        return RemoteParams()
    if isinstance(params, RemoteParams):
        return params
    return RemoteParams().with_overrides(params.to_dict())


def load_remote(server: RemoteServer, model: str) -> OpenAICompatEngine:
    """The engine for ``model`` on ``server``, once the server has confirmed it serves it (where it lists its
    models): an unknown id, a wrong key or an unreachable server is a ``RemoteError`` now, not at the first
    reply."""
    try:
        listed = list_models(server, timeout_s=min(server.timeout_s, 10.0))
    except RemoteError as exc:
        if exc.status not in NO_LISTING:
            raise
        return OpenAICompatEngine(server, model)
    if model not in listed:
        shown = ", ".join(listed[:8]) + (", …" if len(listed) > 8 else "")
        raise server.failure(f"unknown model {model!r} (it serves: {shown or 'nothing'})")
    return OpenAICompatEngine(server, model, served_model=model)
