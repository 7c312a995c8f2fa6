"""The chat-template family's rules as small pure functions: what a folder must hold, the messages a
template is given, where a reply ends, its default settings, and its reasoning part.

Each follows what transformers 5 does for a model with a chat template: ``PreTrainedTokenizerBase.
apply_chat_template`` (``tokenization_utils_base.py``) renders and tokenizes the messages, and
``generate()`` (``generation/utils.py``, ``generation/configuration_utils.py``) reads the model's
``generation_config.json`` for its defaults and end ids.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from zhbench.engines.types import GenerationParams, Message

#: zhbench's cap on a reply where the model names none: transformers' own default (``max_length=20``, prompt
#: included) would end every chat reply after a few words; the models' cards ask for 512 and more
DEFAULT_MAX_NEW_TOKENS = 512
#: the variable a template reads to switch thinking on or off (Qwen3, GLM-4.6, DeepSeek-V3.1, …)
THINKING_VARIABLE = "enable_thinking"
THINK_OPEN, THINK_CLOSE = "<think>", "</think>"


@dataclass(frozen=True)
class ChatTemplateParams(GenerationParams):
    """The chat-template family's settings add the system prompt (the template's system message; empty:
    none) and ``enable_thinking``, passed to a template that reads it."""

    system_prompt: str = ""
    enable_thinking: bool = True

    prompt_settings: ClassVar[frozenset[str]] = frozenset({"system_prompt", "enable_thinking"})


def remote_code_entry(config: Mapping[str, Any]) -> str | None:
    """The ``auto_map`` entry a ``config.json`` names for its causal LM (code that comes with the model)."""
    auto_map = config.get("auto_map")
    if not isinstance(auto_map, Mapping):
        return None
    for key in ("AutoModelForCausalLM", "AutoModel"):
        entry = auto_map.get(key)
        if isinstance(entry, str):
            return entry
        if isinstance(entry, list) and entry and isinstance(entry[0], str):
            return entry[0]
    return None


def causal_architecture(config: Mapping[str, Any]) -> str | None:
    """The model class ``config.json`` names for causal generation (``Qwen2ForCausalLM``…), or None."""
    architectures = config.get("architectures")
    if not isinstance(architectures, list):
        return None
    return next((a for a in architectures if isinstance(a, str) and a.endswith("ForCausalLM")), None)


def chat_messages(history: Sequence[Message], system_prompt: str) -> list[dict[str, str]]:
    """The messages a template renders: the system prompt first (where there is one), then the history."""
    system = [{"role": "system", "content": system_prompt}] if system_prompt else []
    return system + [{"role": m["role"], "content": m["content"]} for m in history]


def template_variables(template: str, params: ChatTemplateParams) -> dict[str, Any]:
    """The extra variables passed to the template: ``enable_thinking`` where the template reads it."""
    return {THINKING_VARIABLE: params.enable_thinking} if THINKING_VARIABLE in template else {}


def end_ids(
    generation_config: Mapping[str, Any], config: Mapping[str, Any], tokenizer_eos: int | None
) -> frozenset[int]:
    """Every id that ends a reply: ``generation_config.json``'s ``eos_token_id`` (an int or a list),
    ``config.json``'s and the tokenizer's. Qwen's generation config lists two; reading one makes the
    model run on past the end of its turn."""
    found: set[int] = set()
    for value in (generation_config.get("eos_token_id"), config.get("eos_token_id"), tokenizer_eos):
        found.update(_ids(value))
    return frozenset(found)


def _ids(value: object) -> Iterable[int]:
    if isinstance(value, bool):
        return ()
    if isinstance(value, int):
        return (value,)
    if isinstance(value, list):
        return (v for v in value if isinstance(v, int) and not isinstance(v, bool))
    return ()


def model_defaults(generation_config: Mapping[str, Any]) -> ChatTemplateParams:
    """The model's own decoding settings (``generation_config.json``), transformers' defaults for the rest.

    ``do_sample`` false (transformers' default) is greedy; temperature 1, top_p 1, top_k 50 and no
    repetition penalty are ``GenerationConfig``'s defaults; the reply may take ``max_new_tokens`` where the
    file sets it, else ``DEFAULT_MAX_NEW_TOKENS``.
    """

    def number(key: str, default: float) -> float:
        value = generation_config.get(key)
        return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else default

    max_new = generation_config.get("max_new_tokens")
    return ChatTemplateParams(
        greedy=generation_config.get("do_sample") is not True,
        temperature=number("temperature", 1.0) or 1.0,
        top_p=number("top_p", 1.0),
        top_k=int(number("top_k", 50)),
        repetition_penalty=number("repetition_penalty", 1.0),
        max_new_tokens=max_new if isinstance(max_new, int) and max_new > 0 else DEFAULT_MAX_NEW_TOKENS,
    )


def prompt_opens_thinking(prompt_text: str) -> bool:
    """Whether the rendered prompt leaves a ``<think>`` open for the reply (R1 distills, Qwen3.5): the
    reply then starts inside its reasoning, without an opening tag of its own."""
    opened, closed = prompt_text.rfind(THINK_OPEN), prompt_text.rfind(THINK_CLOSE)
    return opened != -1 and opened > closed and not prompt_text[opened + len(THINK_OPEN) :].strip()


_CLOSE = re.compile(re.escape(THINK_CLOSE))


def split_reasoning(text: str, *, opened: bool) -> tuple[str, str]:
    """``(reasoning, answer)`` of a reply: the part between ``<think>`` (or the reply's start, when the
    prompt opened it) and ``</think>``, and what follows, each stripped of the blank lines around it. A
    reply still thinking (no ``</think>`` yet) is all reasoning; a reply that does not think, all answer."""
    start = 0
    if not opened:
        stripped = text.lstrip()
        if not stripped.startswith(THINK_OPEN):
            return "", text
        start = len(text) - len(stripped) + len(THINK_OPEN)
    end = _CLOSE.search(text, start)
    if end is None:
        return text[start:].strip("\n"), ""
    return text[start : end.start()].strip("\n"), text[end.end() :].lstrip("\n")


def settled_reasoning(text: str, *, opened: bool) -> str:
    """The part of a reply in progress whose split into reasoning and answer later tokens cannot change:
    a start that may yet become ``<think>``, and an end that may yet become ``</think>``, wait."""
    if not opened:
        stripped = text.lstrip()
        if stripped and THINK_OPEN.startswith(stripped):
            return ""
        if not stripped.startswith(THINK_OPEN):
            return text
    for length in range(min(len(THINK_CLOSE) - 1, len(text)), 0, -1):
        if THINK_CLOSE.startswith(text[-length:]):
            return text[:-length]
    return text
