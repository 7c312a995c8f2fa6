"""Fitting a conversation into a model's context: the newest part is kept, the oldest is dropped.

Upstream code for the seed models either crashes past the model's positions or cuts the right end of
the input (losing the newest question). zhbench keeps the newest message and drops the oldest.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

from engines.types import Message

T = TypeVar("T")


def prompt_budget(context_length: int, max_new_tokens: int) -> int:
    """Tokens a prompt may take so the reply has room: all but ``max_new_tokens``, never under half."""
    return max(context_length - max_new_tokens, context_length // 2)


def fit_newest(items: list[T], fits: Callable[[list[T]], bool]) -> list[T]:
    """The longest tail of ``items`` that ``fits`` (at least the last item, even if it does not fit)."""
    start = 0
    while start < len(items) - 1 and not fits(items[start:]):
        start += 1
    return items[start:]


def fit_messages(history: Sequence[Message], fits: Callable[[list[Message]], bool]) -> list[Message]:
    """The newest messages that fit, starting with a user message (the oldest exchange goes first)."""
    kept = fit_newest(list(history), fits)
    while len(kept) > 1 and kept[0]["role"] != "user":
        kept = kept[1:]
    return kept


def keep_tail_that_fits(text: str, fits: Callable[[str], bool]) -> str:
    """The longest end of ``text`` that ``fits`` (binary search over where it starts)."""
    if fits(text):
        return text
    low, high = 1, len(text)  # text[high:] == "" is assumed to fit
    while low < high:
        middle = (low + high) // 2
        if fits(text[middle:]):
            high = middle
        else:
            low = middle + 1
    return text[low:]
