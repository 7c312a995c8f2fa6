"""Plain data shared by every engine: chat messages, decoding parameters, prompts and replies."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, ClassVar, Literal, Self, TypedDict

from zhbench.engines.errors import HistoryError


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


#: the longest reply a setting may ask for: no model writes past its context, and the longest context of the
#: open chat models zhbench runs is about a million tokens (Qwen2.5-7B-Instruct-1M: 1,010,000)
MAX_NEW_TOKENS = 2**20
#: the largest seed: RWKV's sampler seeds numpy's ``RandomState`` and servers such as llama.cpp's take a
#: 32-bit seed (torch would take 64 bits); the engines draw theirs below 2**31
MAX_SEED = 2**32 - 1
#: the ``dataclasses.field`` metadata key of a text setting's known values
CHOICES = "choices"


def choice_field(default: str, choices: Iterable[str]) -> Any:
    """A text setting that takes one of ``choices`` (PromptCLUE's ``task``…): checked by ``problems`` and
    picked from a list in the editor."""
    return field(default=default, metadata={CHOICES: tuple(choices)})


#: one range check of a setting: its name, whether its value is in range, and what to say when not
Check = tuple[str, bool, str]


def failed_checks(checks: Iterable[Check]) -> dict[str, str]:
    """The messages of the checks that failed, by setting (the first one of each)."""
    failed: dict[str, str] = {}
    for name, ok, message in checks:
        if not ok:
            failed.setdefault(name, message)
    return failed


def whole_number(name: str, value: int | None, low: int, high: int | None = None, *, note: str = "") -> Check:
    """``value`` is from ``low`` to ``high`` (no limit when None); a None value (a seed to draw) is fine."""
    limits = f"from {low} to {high}" if high is not None else f"{low} or more"
    ok = value is None or (low <= value and (high is None or value <= high))
    return name, ok, f"{name} must be a whole number {limits}" + (f" ({note})" if note else "")


def positive_number(name: str, value: float, note: str) -> Check:
    return name, 0 < value < math.inf, f"{name} must be above 0 and finite ({note})"


def finite_number(name: str, value: float) -> Check:
    return name, math.isfinite(value), f"{name} must be a finite number"


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

    #: settings an engine of this kind has no way to apply (a server's API has no field for them, RWKV's sampler
    #: no use): refused by ``validate`` unless left at their default, rather than silently dropped, and left
    #: out of the editor
    fixed_settings: ClassVar[frozenset[str]] = frozenset()
    #: why ``fixed_settings`` cannot be set, for the message that refuses one
    fixed_because: ClassVar[str] = "this model does not use it"
    #: settings that shape the prompt rather than the decoding (a system prompt, a task template): choosing a
    #: preset leaves them as they are
    prompt_settings: ClassVar[frozenset[str]] = frozenset()

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

    @classmethod
    def choices(cls) -> dict[str, tuple[str, ...]]:
        """The text settings that take one of a known set of values, with those values."""
        return {f.name: f.metadata[CHOICES] for f in dataclasses.fields(cls) if CHOICES in f.metadata}

    def problems(self) -> dict[str, str]:
        """What is wrong, one message for each setting out of range (none when all are fine). A family with
        settings of its own adds its checks to these."""
        defaults, fixed = type(self)(), f"cannot be set for this model: {self.fixed_because}"
        return failed_checks(
            [
                positive_number("temperature", self.temperature, "use greedy for deterministic replies"),
                ("top_p", 0 < self.top_p <= 1, "top_p must be above 0 and at most 1 (1: off)"),
                whole_number("top_k", self.top_k, 0, note="0: off"),
                positive_number("repetition_penalty", self.repetition_penalty, "1: off"),
                whole_number("max_new_tokens", self.max_new_tokens, 1, MAX_NEW_TOKENS),
                whole_number("seed", self.seed, 0, MAX_SEED, note="none: drawn for each reply"),
                whole_number("num_beams", self.num_beams, 1),
                finite_number("length_penalty", self.length_penalty),
                whole_number("no_repeat_ngram_size", self.no_repeat_ngram_size, 0, note="0: off"),
                *(_choice_check(name, getattr(self, name), known) for name, known in self.choices().items()),
                *(
                    (name, getattr(self, name) == getattr(defaults, name), f"{name} {fixed}")
                    for name in sorted(self.fixed_settings)
                ),
            ]
        )

    def validate(self) -> None:
        """Raise ``ValueError`` naming every setting out of range (``problems``), one message each."""
        problems = self.problems()
        if problems:
            raise ValueError("; ".join(problems.values()))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _coerce(value: object, current: object, annotation: object, name: str) -> object:
    text = str(annotation)
    if value is None or (isinstance(value, str) and value.lower() == "none" and "None" in text):
        if "None" in text:
            return None
        raise ValueError(f"{name} cannot be empty")
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
        kind = text.split(" ")[0]
        raise ValueError(f"{name} needs {_KINDS.get(kind, kind)}, got {value!r}") from None
    return str(value)


#: what a setting of each type takes, for the message that refuses a value
_KINDS = {"bool": "true or false", "int": "a whole number", "float": "a number"}


def _choice_check(name: str, value: str, known: Sequence[str]) -> Check:
    return name, value in known, f"unknown {name} {value!r} (known: {', '.join(known)})"


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
