"""Plain data shared by every engine: chat messages, decoding parameters, prompts and replies."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, ClassVar, Literal, Self, TypedDict

from engines.errors import HistoryError


class Message(TypedDict):
    role: Literal["user", "assistant"]
    content: str


def validate_history(history: object) -> list[Message]:
    """A chat history to answer: well-formed messages, the last one from the user (else ``HistoryError``)."""
    messages = validate_messages(history)
    if not messages or messages[-1]["role"] != "user":
        raise HistoryError("the last message of a history must be from the user")
    return messages


def validate_messages(history: object) -> list[Message]:
    """Check a list of chat messages' shape and return it; raise ``HistoryError`` if malformed."""
    if not isinstance(history, Sequence) or isinstance(history, (str, bytes)):
        raise HistoryError('a history must be a list of {"role", "content"} objects')
    messages: list[Message] = []
    for index, item in enumerate(history):
        if not isinstance(item, Mapping):
            raise HistoryError(f'message {index} is not an object with "role" and "content"')
        role, content = item.get("role"), item.get("content")
        if role not in ("user", "assistant"):
            raise HistoryError(f'message {index} has role {role!r}; expected "user" or "assistant"')
        if not isinstance(content, str):
            raise HistoryError(f'message {index} has no text "content"')
        if not is_encodable(content):
            raise HistoryError(f"message {index} is not valid Unicode text (it holds a lone surrogate)")
        messages.append({"role": role, "content": content})
    return messages


def is_encodable(text: str) -> bool:
    """Whether ``text`` is real Unicode text: a lone surrogate (from a JSON ``\\ud800`` escape, or bytes
    that were not UTF-8 decoded with ``surrogateescape``) cannot be encoded, and tokenizers fail on it."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


@dataclass(frozen=True)
class GenerationParams:
    """Decoding settings of one reply. Each family's defaults are its upstream defaults.

    ``greedy`` means deterministic decoding: argmax, or beam search when ``num_beams`` > 1.
    ``seed`` None means "draw one"; the seed actually used is reported with the reply.
    Families with settings of their own subclass this.
    """

    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0
    repetition_penalty: float = 1.0
    max_new_tokens: int = 128
    greedy: bool = False
    seed: int | None = None
    num_beams: int = 1
    length_penalty: float = 1.0
    no_repeat_ngram_size: int = 0

    #: settings an engine of this kind has no way to apply (a server's API has no field for them): refused by
    #: ``validate`` unless left at their default, rather than silently dropped, and left out of the editor
    fixed_settings: ClassVar[frozenset[str]] = frozenset()

    def with_overrides(self, overrides: Mapping[str, object]) -> Self:
        """Return a copy with fields replaced, each value coerced to its field's type (strings from a CLI too)."""
        fields = {f.name: f for f in dataclasses.fields(self)}
        changes: dict[str, Any] = {}
        for name, value in overrides.items():
            if name not in fields:
                known = ", ".join(sorted(fields))
                raise ValueError(f"unknown parameter {name!r} for {type(self).__name__} (known: {known})")
            changes[name] = _coerce(value, getattr(self, name), fields[name].type, name)
        return dataclasses.replace(self, **changes)

    def validate(self) -> None:
        """Raise ``ValueError`` naming the first setting out of range."""
        checks = [
            (self.temperature > 0, "temperature must be above 0 (use greedy for deterministic replies)"),
            (0 < self.top_p <= 1, "top_p must be in (0, 1]"),
            (self.top_k >= 0, "top_k must be 0 (off) or more"),
            (self.repetition_penalty > 0, "repetition_penalty must be above 0"),
            (self.max_new_tokens >= 1, "max_new_tokens must be at least 1"),
            (self.num_beams >= 1, "num_beams must be at least 1"),
            (self.no_repeat_ngram_size >= 0, "no_repeat_ngram_size must be 0 (off) or more"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(message)
        defaults = type(self)()
        for name in sorted(self.fixed_settings):
            if getattr(self, name) != getattr(defaults, name):
                raise ValueError(f"{name} cannot be set for this model: its API has no field for it")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _coerce(value: object, current: object, annotation: object, name: str) -> object:
    text = str(annotation)
    if value is None or (isinstance(value, str) and value.lower() == "none" and "None" in text):
        if "None" in text:
            return None
        raise ValueError(f"parameter {name!r} cannot be empty")
    try:
        if text.startswith("bool") or isinstance(current, bool):
            if isinstance(value, str):
                if value.lower() in ("1", "true", "yes", "on"):
                    return True
                if value.lower() in ("0", "false", "no", "off"):
                    return False
                raise ValueError(value)
            return bool(value)
        if text.startswith("int") or isinstance(current, int):
            if isinstance(value, float) and not value.is_integer():
                raise ValueError(value)
            return int(value)  # type: ignore[call-overload]
        if text.startswith("float") or isinstance(current, float):
            return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ValueError(f"parameter {name!r} needs a {text.split(' ')[0]} value, got {value!r}") from None
    return str(value)


class StopReason(StrEnum):
    EOS = "eos"  # the model emitted its end-of-sequence token
    STOP_RULE = "stop_rule"  # a family's text rule ended the reply (for example RWKV's blank line)
    LENGTH = "length"  # max_new_tokens, or the model's context, was reached
    CANCELLED = "cancelled"  # the caller asked to stop
    ERROR = "error"  # generation raised


@dataclass(frozen=True)
class ContextFit:
    """How a conversation was fitted into a model's context: its window, and what did not fit in it."""

    #: the tokens the model's input holds (an encoder-decoder model: its encoder's)
    window: int
    #: the oldest messages of the history left out (by the context, or by the family's own window of turns)
    dropped_messages: int = 0
    #: the newest message kept only its end
    truncated: bool = False


@dataclass(frozen=True)
class Prompt:
    """What a model is fed: for encoder-decoder models, the encoder input."""

    text: str
    input_ids: list[int]
    #: None where the family has no window to fit (RWKV carries its state instead)
    fit: ContextFit | None = field(default=None, kw_only=True)


#: ``ReplyStats`` fields left out of ``to_dict`` at their default: the shape of every reply that does not
#: think, whose counts are exact, or whose model fits no window (a server, RWKV) is unchanged
_LEFT_OUT_AT_DEFAULT = (
    "reasoning_tokens",
    "estimated",
    "context_tokens",
    "context_window",
    "dropped_messages",
    "truncated",
)


@dataclass(frozen=True)
class ReplyStats:
    prompt_tokens: int
    new_tokens: int
    ttft_s: float | None  # None when no token came
    tokens_per_s: float  # new tokens over the whole reply time, prompt processing included
    total_s: float
    stop_reason: StopReason
    #: of ``new_tokens``, those spent thinking (a reasoning model's ``<think>`` part)
    reasoning_tokens: int = 0
    #: the token counts are zhbench's estimate (a server that did not report its ``usage``)
    estimated: bool = False
    #: the prompt's tokens and the model's window they were fitted into (``ContextFit``), where it has one
    context_tokens: int | None = None
    context_window: int | None = None
    #: what of the conversation the prompt left out (``ContextFit``)
    dropped_messages: int = 0
    truncated: bool = False

    @classmethod
    def context_of(cls, prompt: Prompt | None) -> dict[str, Any]:
        """The context fields of a reply to ``prompt`` (none where its family fits no window)."""
        if prompt is None or prompt.fit is None:
            return {}
        fit = prompt.fit
        return {
            "context_tokens": len(prompt.input_ids),
            "context_window": fit.window,
            "dropped_messages": fit.dropped_messages,
            "truncated": fit.truncated,
        }

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["stop_reason"] = self.stop_reason.value
        for name in _LEFT_OUT_AT_DEFAULT:
            if not data[name]:
                del data[name]
        return data


def stats_summary(stats: Mapping[str, Any], params: Mapping[str, Any] | None = None) -> str:
    """One line about a reply, from ``ReplyStats.to_dict()``: tokens, first-token time, speed, why it stopped,
    the context it filled and what of the conversation did not fit; with the reply's
    ``GenerationParams.to_dict()``, the seed it drew too, so that a sampled reply a person liked can be
    drawn again (a greedy one needs none)."""
    ttft = stats.get("ttft_s")
    first = f"first after {ttft:.2f}s" if isinstance(ttft, (int, float)) else "no token"
    thinking = stats.get("reasoning_tokens")
    tokens = f"{stats.get('new_tokens', 0)} tokens" + (f" ({thinking} thinking)" if thinking else "")
    if stats.get("estimated"):
        tokens = f"~{tokens} (estimated)"
    parts = [tokens, first, f"{stats.get('tokens_per_s', 0.0):.1f} tok/s", str(stats.get("stop_reason", "?"))]
    if stats.get("context_window"):
        parts.append(f"ctx {stats.get('context_tokens', 0)}/{stats['context_window']}")
    dropped = stats.get("dropped_messages")
    cut = [f"dropped {dropped} earlier message{'s' if dropped != 1 else ''}"] if dropped else []
    if stats.get("truncated"):
        cut.append("message truncated")
    if cut:  # the model did not see the whole conversation: say so wherever the reply is shown
        parts.append("context: " + ", ".join(cut))
    seed = params.get("seed") if params and not params.get("greedy") else None
    if seed is not None:
        parts.append(f"seed {seed}")
    return " · ".join(parts)


@dataclass(frozen=True)
class Reply:
    """A finished (or stopped, or failed) reply: its answer, how it went, and for a local model the ids
    generated and the prompt fed.

    A reasoning model's reply has its thinking apart in ``reasoning``; ``raw_text`` is then the reply as
    the model wrote it, thinking included, which is what goes back into the conversation.
    """

    family: str
    text: str
    params: GenerationParams
    stats: ReplyStats
    error: str | None = None
    output_ids: list[int] = field(default_factory=list)
    prompt: Prompt | None = field(default=None, repr=False)
    reasoning: str = ""
    raw_text: str | None = None
    #: a server's reply: the model id the server said answered it
    served_model: str | None = None

    @property
    def history_content(self) -> str:
        """The reply as the next turn's history carries it (the model's template decides what to keep)."""
        return self.raw_text if self.raw_text is not None else self.text

    @property
    def partial(self) -> bool:
        return self.stats.stop_reason in (StopReason.CANCELLED, StopReason.ERROR)
