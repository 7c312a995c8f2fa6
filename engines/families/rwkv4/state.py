"""The RNN state a chat carries: ChatRWKV's saved states, and ``run_rnn`` feeding tokens on top of one."""

from __future__ import annotations

import copy
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from zhbench.engines.families.rwkv4.chat_rules import FEED_CHUNK, NEVER

if TYPE_CHECKING:
    import torch


@dataclass
class Snapshot:
    """``save_all_stat``: the logits for the next token, the RNN state and every token fed to reach it."""

    logits: torch.Tensor | None
    state: list[torch.Tensor] | None
    tokens: list[int]

    def copy(self) -> Snapshot:
        """A deep copy: ``model.forward`` changes the state it is given in place."""
        logits = None if self.logits is None else self.logits.clone()
        return Snapshot(logits, copy.deepcopy(self.state), list(self.tokens))


@dataclass(frozen=True)
class FeedRules:
    """What ``run_rnn`` does to the next logits after a feed: ``<|endoftext|>`` is never sampled, the
    newline's logit gets the turn's adjustment, and a token of ``AVOID_REPEAT`` never follows itself."""

    end_of_text_id: int
    newline_id: int
    avoid_repeat_ids: frozenset[int]


class Rnn:
    """``run_rnn`` and the state it works on, for one reply."""

    def __init__(self, model: Any, rules: FeedRules, start: Snapshot | None) -> None:
        self._model = model
        self._rules = rules
        self.now = start.copy() if start is not None else Snapshot(None, None, [])

    def feed(self, ids: Sequence[int], newline_adjustment: float, cancel: threading.Event | None = None) -> bool:
        """Feed ``ids`` and adjust the next logits as ``run_rnn``; False when cancelled part-way."""
        if not ids:
            return True
        rules, now = self._rules, self.now
        out = None
        for start in range(0, len(ids), FEED_CHUNK):
            if cancel is not None and cancel.is_set():
                return False
            chunk = [int(token) for token in ids[start : start + FEED_CHUNK]]
            out, now.state = self._model.forward(chunk, now.state)
            now.tokens += chunk
        assert out is not None
        out[rules.end_of_text_id] = NEVER  # <|endoftext|> is never sampled
        out[rules.newline_id] += newline_adjustment
        if now.tokens[-1] in rules.avoid_repeat_ids:
            out[now.tokens[-1]] = NEVER
        now.logits = out
        return True
