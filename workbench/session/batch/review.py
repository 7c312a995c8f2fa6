"""Reviewing a batch run by hand: its answers two at a time, blind, each vote a battle for the vote store.

For every item, two models that both answered it (and its first repeat) are drawn, their sides at random;
the person reads the two answers as "Model A" and "Model B" and votes. The battle records both models as
the run recorded them and the conversation each was given, with the answer as its reply.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from zhbench.engines.types import Message
from zhbench.workbench.session.arena.votes import Battle, BattleModel, Verdict, new_battle
from zhbench.workbench.session.batch.prompts import PromptItem
from zhbench.workbench.session.batch.store import AnswerRecord, RunLog, read_run
from zhbench.workbench.session.identity import recorded_model_id


@dataclass(frozen=True)
class ReviewPair:
    """One item and two models' answers to it, sides as drawn."""

    item: PromptItem
    answer_a: AnswerRecord
    answer_b: AnswerRecord


def review_pairs(folder: Path, rng: random.Random) -> tuple[RunLog, list[ReviewPair]]:
    """The run in ``folder`` and, item by item in a shuffled order, two of the models that answered it (its
    first repeat, without failure), sides at random. Items fewer than two models answered are left out."""
    log = read_run(folder)
    pairs = []
    for item in log.settings.items:
        answered = [
            record
            for model in log.settings.models
            if (record := log.answers.get((model, item.id, 0))) is not None and not record.failed
        ]
        if len(answered) >= 2:
            first, second = rng.sample(answered, 2)
            pairs.append(ReviewPair(item, first, second))
    rng.shuffle(pairs)
    return log, pairs


def conversation(item: PromptItem, answer: AnswerRecord) -> list[Message]:
    """What the model was given, and its answer as the reply."""
    return [*item.messages, {"role": "assistant", "content": answer.message.content}]


def battle_of_review(pair: ReviewPair, log: RunLog, verdict: Verdict, *, maker_names: Sequence[str]) -> Battle:
    """The battle a vote on ``pair`` records: blind, by a person, both models as the run loaded them."""

    def side(answer: AnswerRecord) -> BattleModel:
        loaded = log.models.get(answer.model)
        return BattleModel(
            id=recorded_model_id(answer.message.model or answer.model, loaded.path if loaded else None),
            fingerprint=loaded.fingerprint if loaded else None,
            family=answer.message.family or (loaded.family if loaded else "?"),
            path=loaded.path if loaded else None,
            server=loaded.base_url if loaded else None,
            params=dict(answer.message.params or {}),
            seed=answer.seed,
        )

    return new_battle(
        side(pair.answer_a),
        side(pair.answer_b),
        verdict,
        conversation(pair.item, pair.answer_a),
        conversation(pair.item, pair.answer_b),
        anonymous=True,
        maker_names=maker_names,
    )
