"""A turn's plan: which saved state a reply starts from and which segments it feeds on top of it."""

from __future__ import annotations

from dataclasses import dataclass

from zhbench.engines.families.rwkv4.chat_rules import DEFAULT_INIT_PROMPT, Exchange, UserTurn
from zhbench.engines.types import Prompt


@dataclass(frozen=True)
class Segment:
    """Text fed in one ``run_rnn`` call, tokenized on its own as upstream tokenizes it."""

    role: str  # "init", "user" (a chat message), "reply" (a past reply), "free" (a free-generation prompt)
    ids: tuple[int, ...]


@dataclass(frozen=True)
class Rwkv4Prompt(Prompt):
    """A turn's plan: the state to start from, the segments to feed on top of it, and what to keep.

    ``input_ids`` is everything the model has consumed by the end of the feed (the start state's tokens
    and the segments); only the segments are fed this turn.
    """

    turn: UserTurn
    start: str | None = None  # a snapshot name, or None for the empty state
    segments: tuple[Segment, ...] = ()
    init_prompt: str = DEFAULT_INIT_PROMPT
    before: tuple[Exchange, ...] = ()  # the chat exchanges under the message being answered
    message: str = ""  # the chat message being answered, as typed

