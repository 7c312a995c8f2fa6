"""Fitting a conversation into a model's context: the newest part is kept, the oldest is dropped.

Upstream code for the seed models either crashes past the model's positions or cuts the right end of
the input (losing the newest question). zhbench keeps the newest message and drops the oldest.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from typing import NamedTuple, TypeVar

from zhbench.engines.types import ContextFit, Message

T = TypeVar("T")


class FittedIds(NamedTuple):
    """A prompt's ids, and what of the conversation was left out to fit them in the context."""

    ids: list[int]
    dropped_messages: int = 0
    truncated: bool = False

    def fit(self, window: int) -> ContextFit:
        return ContextFit(window, self.dropped_messages, self.truncated)


def prompt_budget(context_length: int, max_new_tokens: int) -> int:
    """Tokens a prompt may take so the reply has room: all but ``max_new_tokens``, never under half."""
    return max(context_length - max_new_tokens, context_length // 2)


def fit_newest(items: list[T], fits: Callable[[list[T]], bool]) -> list[T]:
    """The longest tail of ``items`` that ``fits`` (at least the last item, even if it does not fit).

    ``fits`` is asked about tails of 2, 4, 8… items from the newest until one does not fit, then between the
    last two sizes by halving: a few questions, each about no more than twice what fits, so a conversation of
    thousands of turns costs about what its window costs, never a question per turn over the whole of it.
    """
    if len(items) <= 1:
        return items
    fitting, size = 1, 2
    while size < len(items) and fits(items[-size:]):
        fitting, size = size, size * 2
    if size >= len(items):
        if fits(items):
            return items
        size = len(items)
    while size - fitting > 1:  # the newest `fitting` items fit (or are the one item kept anyway), `size` do not
        middle = (fitting + size) // 2
        fitting, size = (middle, size) if fits(items[-middle:]) else (fitting, middle)
    return items[-fitting:]


def fit_newest_in_steps(sizes: Sequence[int], budget: int, *, may_start: Callable[[int], bool]) -> int:
    """Where the newest items that fit in ``budget`` tokens start, moving only in steps of about half of it.

    ``sizes`` are the items' token counts, oldest first; ``may_start(i)`` says whether a window may start
    at item ``i``. The steps are fixed points, found from the oldest item on: a new one wherever the items
    since the last one reach half the budget. Appending items never moves them, so a growing conversation
    keeps the same window start (and its cached prefix stays valid) until the window outgrows the budget,
    then drops about half of it at once, as llama.cpp's context shift does, rather than a little every turn.
    When no step point leaves a window that fits, the start is the oldest allowed item whose tail fits (the
    last item, even if it alone does not fit).
    """
    before = [0, *itertools.accumulate(sizes)]  # before[i]: tokens in the items older than item i
    steps = [0]
    for index in range(1, len(sizes)):
        if before[index] - before[steps[-1]] >= budget // 2 and may_start(index):
            steps.append(index)
    for step in steps:
        if before[-1] - before[step] <= budget and may_start(step):
            return step
    start = max(len(sizes) - 1, 0)
    for index in range(len(sizes) - 1, -1, -1):
        if before[-1] - before[index] > budget:
            break
        if may_start(index):
            start = index
    return start


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
