"""An OpenAI chat-completions request read into what a zhbench engine takes: a history in the family's own
terms, decoding settings on top of the engine's defaults, and stop strings. Anything it cannot honour is
refused with a ``BadRequest`` naming the field, never silently dropped.

The field meanings follow OpenAI's API reference for ``POST /v1/chat/completions`` and what vLLM's
``protocol.py`` accepts beyond it (``top_k``, ``repetition_penalty``, ``chat_template_kwargs``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from zhbench.engines.errors import HistoryError
from zhbench.engines.types import MAX_SEED, GenerationParams, Message, validate_history

#: roles whose text becomes the system prompt (OpenAI's newer clients say ``developer`` for ``system``)
SYSTEM_ROLES = ("system", "developer")
#: OpenAI's own range for ``temperature``; 0 means greedy decoding, as OpenAI-compatible servers take it
MAX_TEMPERATURE = 2.0
#: the lowest temperature that samples: below it the logits overflow when divided (1e-300 would)
MIN_TEMPERATURE = 0.01
#: more stop strings than this is a mistake (OpenAI allows 4; vLLM any number)
MAX_STOP_STRINGS = 16
#: the longest a stop string may be
MAX_STOP_CHARS = 256
#: half of a UTF-16 surrogate pair, alone: JSON's ``"\ud800"`` decodes to one, and no tokenizer can encode it
LONE_SURROGATE = re.compile("[\ud800-\udfff]")
#: request fields zhbench's engines have no way to honour, with the value that asks for nothing: any other
#: value is refused
NEUTRAL_FIELDS: Mapping[str, object] = {
    "n": 1,
    "logprobs": False,
    "top_logprobs": 0,
    "frequency_penalty": 0,
    "presence_penalty": 0,
    "logit_bias": {},
    "tools": [],
    "functions": [],
    "response_format": {"type": "text"},
}


class BadRequest(Exception):
    """A request refused with 400; the message names the field and says what it should be."""

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        #: the request field at fault, as OpenAI's error object names it
        self.param = param


@dataclass(frozen=True)
class ChatRequest:
    """One chat-completions request as zhbench runs it."""

    model: str
    history: list[Message]
    params: GenerationParams
    #: strings that end the reply's answer: the text is cut where the first one starts
    stop: tuple[str, ...] = ()
    stream: bool = False
    #: streaming only: send a last chunk with the token counts (``stream_options.include_usage``)
    include_usage: bool = False


def requested_model(body: object) -> str:
    """The ``model`` a request body names (``BadRequest`` when the body is not an object naming one)."""
    if not isinstance(body, Mapping):
        raise BadRequest("the request body must be a JSON object")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise BadRequest('"model" must name one of the served models (GET /v1/models lists them)', "model")
    return model


def read_chat_request(body: Mapping[str, Any], defaults: GenerationParams) -> ChatRequest:
    """The request ``body`` on top of an engine's default settings ``defaults``; ``BadRequest`` for anything
    out of shape or range, or that the engine cannot do.

    A leading system message becomes the system prompt where the family's settings have one
    (``system_prompt``); a family whose prompt format has none refuses it rather than fold it into a user
    turn, which would change the prompt the family's own rules build.
    """
    model = requested_model(body)
    _refuse_unsupported(body)
    system, history = read_messages(body.get("messages"))
    overrides = _setting_overrides(body)
    if system:
        if not hasattr(defaults, "system_prompt"):
            raise BadRequest(
                f"{model} has no system prompt in its prompt format: send the conversation without a system message",
                "messages",
            )
        overrides["system_prompt"] = system
    try:
        params = defaults.with_overrides(overrides)
        params.validate()
    except ValueError as exc:
        raise BadRequest(str(exc)) from None
    stream = _optional(body, "stream", bool) or False
    stream_options = _optional(body, "stream_options", Mapping)
    if stream_options is not None and not stream:
        raise BadRequest('"stream_options" goes with "stream": true', "stream_options")
    include_usage = _optional(stream_options or {}, "include_usage", bool, "stream_options.include_usage") or False
    return ChatRequest(model, history, params, read_stop(body.get("stop")), stream, include_usage)


def read_messages(raw: object) -> tuple[str, list[Message]]:
    """The system prompt (the leading system messages' text, joined) and the conversation after it."""
    if not isinstance(raw, list) or not raw:
        raise BadRequest('"messages" must be a non-empty list of {"role", "content"} objects', "messages")
    system: list[str] = []
    turns: list[dict[str, str]] = []
    for index, item in enumerate(raw):
        if not isinstance(item, Mapping):
            raise BadRequest(f'messages[{index}] must be an object with "role" and "content"', "messages")
        role, content = item.get("role"), message_text(item.get("content"), index)
        if role in SYSTEM_ROLES:
            if turns:
                raise BadRequest(f"messages[{index}]: a system message must come before the conversation", "messages")
            system.append(content)
        elif role in ("user", "assistant"):
            turns.append({"role": role, "content": content})
        else:
            raise BadRequest(f"messages[{index}] has role {role!r}; expected system, user or assistant", "messages")
    try:
        return "\n".join(part for part in system if part.strip()), validate_history(turns)
    except HistoryError as exc:
        raise BadRequest(str(exc), "messages") from None


def message_text(content: object, index: int) -> str:
    """A message's text: a string, or a list of ``{"type": "text", "text"}`` parts joined (OpenAI's two shapes)."""
    if isinstance(content, str):
        return unicode_text(content, f"messages[{index}]", "messages")
    if isinstance(content, list):
        texts = [part.get("text") for part in content if isinstance(part, Mapping) and part.get("type") == "text"]
        if len(texts) == len(content) and all(isinstance(text, str) for text in texts):
            return unicode_text("".join(str(text) for text in texts), f"messages[{index}]", "messages")
        raise BadRequest(f"messages[{index}]: only text content parts are supported", "messages")
    raise BadRequest(f"messages[{index}] has no text content", "messages")


def unicode_text(text: str, where: str, param: str) -> str:
    """``text`` if it is Unicode a tokenizer can take (``BadRequest`` for a lone surrogate)."""
    if LONE_SURROGATE.search(text):
        raise BadRequest(f"{where} holds a lone UTF-16 surrogate (\\ud800-\\udfff), which is not text", param)
    return text


def read_stop(raw: object) -> tuple[str, ...]:
    """``stop``: absent, one string, or a list of non-empty strings."""
    if raw is None:
        return ()
    stops = [raw] if isinstance(raw, str) else raw
    if not isinstance(stops, list) or not all(isinstance(stop, str) and stop for stop in stops):
        raise BadRequest('"stop" must be a non-empty string or a list of them', "stop")
    if len(stops) > MAX_STOP_STRINGS:
        raise BadRequest(f'"stop" takes at most {MAX_STOP_STRINGS} strings', "stop")
    if any(len(stop) > MAX_STOP_CHARS for stop in stops):
        raise BadRequest(f'"stop" strings may be at most {MAX_STOP_CHARS} characters long', "stop")
    return tuple(unicode_text(stop, '"stop"', "stop") for stop in stops)


def _setting_overrides(body: Mapping[str, Any]) -> dict[str, object]:
    """The request's decoding settings as ``GenerationParams`` overrides; the engine's defaults stay for the rest."""
    overrides: dict[str, object] = {}
    temperature = _number(body, "temperature")
    if temperature is not None:
        if not (temperature == 0 or MIN_TEMPERATURE <= temperature <= MAX_TEMPERATURE):
            limits = f"between 0 and {MAX_TEMPERATURE:g}: 0 (greedy) or from {MIN_TEMPERATURE:g} up"
            raise BadRequest(f'"temperature" must be {limits}', "temperature")
        # 0 is greedy decoding, exactly as `--greedy`; anything else samples at that temperature
        overrides |= {"greedy": True} if temperature == 0 else {"greedy": False, "temperature": temperature}
    for field, setting in (("top_p", "top_p"), ("repetition_penalty", "repetition_penalty")):
        value = _number(body, field)
        if value is not None:
            overrides[setting] = value
    top_k = _optional(body, "top_k", int)
    if top_k is not None:
        overrides["top_k"] = max(top_k, 0)  # vLLM's -1 and zhbench's 0 both mean "off"
    max_tokens = _optional(body, "max_completion_tokens", int)  # OpenAI's newer name for max_tokens
    if max_tokens is None:
        max_tokens = _optional(body, "max_tokens", int)
    if max_tokens is not None:
        overrides["max_new_tokens"] = max_tokens
    seed = _optional(body, "seed", int)
    if seed is not None:
        if not 0 <= seed <= MAX_SEED:
            raise BadRequest(f'"seed" must be a whole number from 0 to {MAX_SEED}', "seed")
        overrides["seed"] = seed
    template_options = _optional(body, "chat_template_kwargs", Mapping) or {}
    thinking = _optional(template_options, "enable_thinking", bool, "chat_template_kwargs.enable_thinking")
    if thinking is not None:
        overrides["enable_thinking"] = thinking  # refused by with_overrides for a family without it
    return overrides


def _refuse_unsupported(body: Mapping[str, Any]) -> None:
    for field, neutral in NEUTRAL_FIELDS.items():
        value = body.get(field)
        if value is not None and value != neutral:
            raise BadRequest(f'"{field}" is not supported by zhbench serve (leave it out)', field)


def _optional(body: Mapping[str, Any], field: str, kind: type[Any], name: str | None = None) -> Any:
    """``body[field]`` when it is there and not null, checked to be a ``kind`` (a bool is no int here)."""
    value = body.get(field)
    if value is None:
        return None
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        article = {bool: "true or false", int: "a whole number"}.get(kind, "an object")
        raise BadRequest(f'"{name or field}" must be {article}', name or field)
    return value


def _number(body: Mapping[str, Any], field: str) -> float | None:
    value = body.get(field)
    if value is None:
        return None
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise BadRequest(f'"{field}" must be a number', field)
    return float(value)
