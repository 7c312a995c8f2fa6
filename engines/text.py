"""Small text helpers shared by streams that hold text back: a stop string or a secret may be arriving."""

from __future__ import annotations

from collections.abc import Iterable


def partial_end(text: str, needles: Iterable[str]) -> int:
    """The length of the longest end of ``text`` that is the start, but not the whole, of one of ``needles``.

    Only the last ``len(needle) - 1`` characters are looked at, each where the needle's first character
    occurs, so a stream that asks this at every piece costs time in the needles' length, not the text's.
    """
    longest = 0
    for needle in needles:
        if not needle:
            continue
        at = text.find(needle[0], max(len(text) - len(needle) + 1, 0))
        while at >= 0:
            if needle.startswith(text[at:]):
                longest = max(longest, len(text) - at)
                break
            at = text.find(needle[0], at + 1)
    return longest
