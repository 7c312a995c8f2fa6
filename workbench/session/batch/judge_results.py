"""What a judge's verdicts add up to: each model's win rate against the baseline with a 95% bootstrap
interval, how often the judge agrees with itself when the answers swap places, and the judgements as arena
votes (``source="judge"``).

A pair's score, from the model's side, is 1 for a win, 0.5 for a tie and 0 for a loss in each order the judge
gave a verdict in; an item's score is the mean over its orders and repeats; the win rate is the mean over
items. The interval resamples items (the unit a prompt set samples), ``rounds`` times with a seeded
generator, so the same judgements always give the same interval. A strong and a slight preference (arena-hard's
``>>`` and ``>``) count alike. The consistency rate is over the pairs with a verdict in both orders: the share
whose two verdicts say the same (both a win, both a tie, or both a loss for the model).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any

from zhbench.engines.types import Message
from zhbench.workbench.session.arena.votes import Battle, BattleModel, Verdict, VoteStore, new_battle
from zhbench.workbench.session.batch.judge import MODEL_FIRST, JudgeLog, JudgementRecord, Side, parsed_judgements
from zhbench.workbench.session.batch.prompts import PromptItem
from zhbench.workbench.session.batch.store import AnswerRecord, RunLog
from zhbench.workbench.session.identity import recorded_model_id

DEFAULT_ROUNDS = 1000
#: a verdict's worth to the model: what the win rate averages
SCORE: dict[Side, float] = {"A": 1.0, "tie": 0.5, "B": 0.0}
#: the judge's side, as shown, as an arena verdict
VOTE: dict[Side, Verdict] = {"A": "a", "B": "b", "tie": "tie"}


@dataclass(frozen=True)
class PairResult:
    """One model against the baseline, by one judge."""

    model: str
    baseline: str
    #: judgements with a verdict: the model won, tied, lost (each order counted)
    wins: int
    ties: int
    losses: int
    #: judgements without a verdict in the fixed format (counted, not guessed)
    unparseable: int
    #: judge replies that failed (asked again by a rerun)
    failed: int
    #: items with at least one verdict: what the win rate averages over
    items: int
    win_rate: float | None
    ci_low: float | None
    ci_high: float | None
    #: pairs (item, repeat) with a verdict in both orders, and how many of them agree across the swap
    both_orders: int
    consistent: int

    @property
    def consistency(self) -> float | None:
        return self.consistent / self.both_orders if self.both_orders else None

    def to_json(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "baseline": self.baseline,
            "win_rate": self.win_rate,
            "ci95": None if self.ci_low is None else [self.ci_low, self.ci_high],
            "wins": self.wins,
            "ties": self.ties,
            "losses": self.losses,
            "items": self.items,
            "unparseable": self.unparseable,
            "failed": self.failed,
            "both_orders": self.both_orders,
            "consistent": self.consistent,
            "consistency": self.consistency,
        }


def pair_results(log: JudgeLog, *, rounds: int = DEFAULT_ROUNDS, seed: int = 0) -> list[PairResult]:
    """Every (model, baseline) the judge file has judgements of, in the order first judged."""
    grouped: dict[tuple[str, str], list[JudgementRecord]] = defaultdict(list)
    for record in log.judgements.values():
        grouped[(record.model, record.baseline)].append(record)
    return [_result(model, baseline, records, rounds, seed) for (model, baseline), records in grouped.items()]


def _result(model: str, baseline: str, records: list[JudgementRecord], rounds: int, seed: int) -> PairResult:
    sides = {(r.item, r.repeat, r.order): r.model_side() for r in records if not r.failed}
    per_item: dict[str, list[float]] = defaultdict(list)
    for (item, _, _), side in sides.items():
        if side is not None:
            per_item[item].append(SCORE[side])
    both = [
        (sides.get((item, repeat, MODEL_FIRST)), side)
        for (item, repeat, order), side in sides.items()
        if order != MODEL_FIRST and side is not None and sides.get((item, repeat, MODEL_FIRST)) is not None
    ]
    scores = [sum(values) / len(values) for values in per_item.values()]
    low, high = bootstrap_interval(scores, rounds, seed)
    parsed = [side for side in sides.values() if side is not None]
    return PairResult(
        model=model,
        baseline=baseline,
        wins=parsed.count("A"),
        ties=parsed.count("tie"),
        losses=parsed.count("B"),
        unparseable=sum(1 for side in sides.values() if side is None),
        failed=sum(1 for r in records if r.failed),
        items=len(scores),
        win_rate=sum(scores) / len(scores) if scores else None,
        ci_low=low,
        ci_high=high,
        both_orders=len(both),
        consistent=sum(1 for first, second in both if first == second),
    )


def bootstrap_interval(scores: list[float], rounds: int, seed: int) -> tuple[float | None, float | None]:
    """The 95% percentile interval of the mean of ``scores`` over ``rounds`` resamples (None: no scores)."""
    if not scores:
        return None, None
    import numpy as np

    values = np.asarray(scores, dtype=np.float64)
    if rounds <= 0:
        mean = float(values.mean())
        return mean, mean
    picks = np.random.default_rng(seed).integers(0, len(values), size=(rounds, len(values)))
    low, high = np.percentile(values[picks].mean(axis=1), [2.5, 97.5])
    return float(low), float(high)


# --- votes ----------------------------------------------------------------------------------------


def judge_battles(log: JudgeLog, run: RunLog) -> list[Battle]:
    """Each judgement with a verdict as an arena battle voted by the judge: the two conversations as shown,
    A and B as the judge saw them. A battle's id is its judgement's, so storing them twice stores them once."""
    items = {item.id: item for item in run.settings.items}
    battles = []
    for record in parsed_judgements(log):
        item = items.get(record.item)
        shown_a, shown_b = (run.answers.get((model, record.item, record.repeat)) for model in record.shown)
        if item is None or record.side is None or shown_a is None or shown_b is None:
            continue  # the run no longer holds what was judged (another run's folder would be refused)
        battle = new_battle(
            _battle_model(run, shown_a),
            _battle_model(run, shown_b),
            VOTE[record.side],
            _conversation(item, shown_a),
            _conversation(item, shown_b),
            source="judge",
        )
        battles.append(replace(battle, id=record.message.id, time=record.message.time))
    return battles


def _battle_model(run: RunLog, answer: AnswerRecord) -> BattleModel:
    pane = run.models.get(answer.model)
    return BattleModel(
        id=recorded_model_id(answer.message.model or answer.model, pane.path if pane else None),
        fingerprint=pane.fingerprint if pane else None,
        family=answer.message.family or "?",
        path=pane.path if pane else None,
        server=pane.base_url if pane else None,
        params=dict(answer.message.params or {}),
        seed=answer.seed,
    )


def _conversation(item: PromptItem, answer: AnswerRecord) -> list[Message]:
    return [*item.messages, {"role": "assistant", "content": answer.message.content}]


def record_votes(store: VoteStore, battles: Iterable[Battle]) -> int:
    """Store the battles the vote store does not hold yet; how many were new."""
    held = {battle.id for battle in store.battles()}
    added = 0
    for battle in battles:
        if battle.id not in held:
            store.record(battle)
            held.add(battle.id)
            added += 1
    return added
