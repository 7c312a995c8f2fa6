"""What every family rendering a model's chat template shares: the system prompt and thinking switch a
template is given, the messages it renders, and how a reply's ``<think>`` part is told from its answer.

Used by the chat-template family (transformers' ``apply_chat_template``) and the gguf family (a template
from a GGUF file's metadata), so both give a template the same messages and variables and split a
reasoning model's reply the same way.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from zhbench.engines.types import GenerationParams, Message

#: zhbench's cap on a reply where the model names none: transformers' own default (``max_length=20``, prompt
#: included) and llama.cpp's (16 tokens) would end every chat reply after a few words; the models' cards ask
#: for 512 and more
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


def chat_messages(history: Sequence[Message], system_prompt: str) -> list[dict[str, str]]:
    """The messages a template renders: the system prompt first (where there is one), then the history."""
    system = [{"role": "system", "content": system_prompt}] if system_prompt else []
    return system + [{"role": m["role"], "content": m["content"]} for m in history]


def template_variables(template: str, params: ChatTemplateParams) -> dict[str, Any]:
    """The extra variables passed to the template: ``enable_thinking`` where the template reads it."""
    return {THINKING_VARIABLE: params.enable_thinking} if THINKING_VARIABLE in template else {}


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
