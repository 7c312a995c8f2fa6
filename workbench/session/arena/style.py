"""How a side of a battle looks, for style control: reply length and Markdown elements.

Arena's style control (FastChat ``fastchat/serve/monitor/elo_analysis.py``, ``count_markdown_elements``)
counts, over all the assistant's replies of a conversation, its tokens, headers, list items and bold
spans, after removing code blocks. Length counted here is in characters: Chinese has no spaces, and the
models of a battle do not share a tokenizer; a FastChat file's ``conv_metadata`` gives it in tokens.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from zhbench.engines.types import Message

#: what a reply's length is counted in
LengthUnit = Literal["tokens", "characters"]

_CODE_BLOCK = re.compile(r"```[^`]*```")
_HEADER = re.compile(r"^#{1,6}\s", re.MULTILINE)
_LIST_ITEM = re.compile(r"^\s*(?:\d+\.|[-*+])\s", re.MULTILINE)
_BOLD = re.compile(r"\*\*[^*\n]+\*\*|__[^_\n]+__")

#: the covariates, in the order of ``StyleCounts.as_tuple`` and of the leaderboard's style coefficients
STYLE_FEATURES: tuple[str, ...] = ("length", "headers", "list_items", "bold")


@dataclass(frozen=True)
class StyleCounts:
    """What style control compares between the two sides of a battle."""

    length: int
    headers: int
    list_items: int
    bold: int
    length_unit: LengthUnit = "characters"

    def as_tuple(self) -> tuple[int, int, int, int]:
        return (self.length, self.headers, self.list_items, self.bold)


def style_of_text(text: str) -> StyleCounts:
    """The style counts of one reply; code blocks count for length only, as in Arena."""
    prose = _CODE_BLOCK.sub("", text)
    return StyleCounts(
        length=len(text),
        headers=len(_HEADER.findall(prose)),
        list_items=len(_LIST_ITEM.findall(prose)),
        bold=len(_BOLD.findall(prose)),
    )


def style_of_conversation(turns: Iterable[Message]) -> StyleCounts:
    """The style counts summed over the assistant's messages of a conversation."""
    replies = [style_of_text(m["content"]).as_tuple() for m in turns if m["role"] == "assistant"]
    length, headers, list_items, bold = (sum(column) for column in zip(*replies, strict=True)) if replies else (0,) * 4
    return StyleCounts(length, headers, list_items, bold)
