"""Fitting a conversation into a context: the newest part is kept, and finding it costs about what the kept
window costs, however long the conversation (a 2001-turn request once held a served model for minutes)."""

from __future__ import annotations

import itertools

from zhbench.engines.context import fit_messages, fit_newest


def oldest_first_scan(items: list[int], budget: int) -> list[int]:
    """What fitting meant before: drop the oldest item until the rest fits (asks once per dropped item)."""
    start = 0
    while start < len(items) - 1 and sum(items[start:]) > budget:
        start += 1
    return items[start:]


def test_the_longest_newest_tail_that_fits_is_kept_as_before() -> None:
    for count, budget in itertools.product(range(0, 12), range(0, 60, 3)):
        items = [(index * 7) % 11 + 1 for index in range(count)]
        assert fit_newest(items, lambda window, most=budget: sum(window) <= most) == oldest_first_scan(items, budget)


def test_a_long_conversation_is_asked_about_its_window_not_turn_by_turn() -> None:
    turns = [50] * 4001
    asked: list[int] = []

    def fits(window: list[int]) -> bool:
        asked.append(len(window))
        return sum(window) <= 1000

    kept = fit_newest(turns, fits)
    assert len(kept) == 20
    assert max(asked) <= 2 * 32 and sum(asked) <= 10 * len(kept)  # before: 8 million items looked at


def test_the_kept_messages_start_with_a_user_turn() -> None:
    history = [{"role": "user" if index % 2 == 0 else "assistant", "content": "字" * 10} for index in range(2001)]
    kept = fit_messages(history, lambda messages: sum(len(m["content"]) for m in messages) <= 95)
    assert kept[0]["role"] == "user" and kept == history[-9:]
