"""Models in the ranking by their one id, and two different models that share an id told apart.

A vote names each side by its model's id (``identity.model_identity``) and keeps its fingerprint beside it.
Two different models can share an id: two folders named ``chatyuan`` with different weights. The ranking
does not merge them: an id stored with two or more fingerprints is ranked as that many models, each
``ID#FINGERPRINT`` (its first eight hex digits), and the leaderboard says so. A side stored without a
fingerprint (a server's model, a vote from before fingerprints) goes with the id's only fingerprint, or
stays the plain id where there are several.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import replace

from zhbench.workbench.session.arena.votes import Battle, BattleModel, Outcome
from zhbench.workbench.session.identity import short_fingerprint

#: a model as the leaderboard names one of two that share an id: ``ID#`` and its fingerprint's first digits
_TOLD_APART = re.compile(r"(.+)#([0-9a-f]{8})")


def split_fingerprint(name: str) -> tuple[str, str]:
    """``(id, fingerprint digits)`` of a name as the leaderboard shows it: ``chatyuan#1a2b3c4d`` is
    ``("chatyuan", "1a2b3c4d")``, a plain id ``(id, "")``."""
    told = _TOLD_APART.fullmatch(name.strip())
    return (told[1], told[2]) if told else (name.strip(), "")


def told_apart(battles: Sequence[Battle]) -> tuple[list[Battle], dict[str, set[str]]]:
    """``battles`` with each side of an id shared by models of different fingerprints named ``ID#DIGITS``;
    and those ids, each with its fingerprints."""
    fingerprints: dict[str, set[str]] = {}
    for battle in battles:
        for side in (battle.model_a, battle.model_b):
            if side.fingerprint is not None:
                fingerprints.setdefault(side.id, set()).add(side.fingerprint)
    shared = {model: found for model, found in fingerprints.items() if len(found) > 1}

    def named(side: BattleModel) -> BattleModel:
        if side.id in shared and side.fingerprint is not None:
            return replace(side, id=f"{side.id}#{short_fingerprint(side.fingerprint)}")
        return side

    return [replace(b, model_a=named(b.model_a), model_b=named(b.model_b)) for b in battles], shared


def shared_id_notes(shared: dict[str, set[str]]) -> list[str]:
    """A line for each id of several models: what they are called apart, and how to name them."""
    return [
        f"{len(found)} different models share the id {model} (their weights differ): ranked apart as "
        + ", ".join(f"{model}#{short_fingerprint(fingerprint)}" for fingerprint in sorted(found))
        + "; `zhbench votes rename` gives the stored votes another name"
        for model, found in sorted(shared.items())
    ]


def ranked_outcomes(battles: Sequence[Battle]) -> tuple[list[Outcome], list[str]]:
    """Each battle's outcome for the ranking, models of one id and different fingerprints apart, a battle of a
    model against itself left out; and a line saying what was left out and one for each id of several
    models, saying what its rows are and how to name them."""
    apart, shared = told_apart(battles)
    named = [battle.outcome() for battle in apart]
    outcomes = [outcome for outcome in named if outcome.model_a != outcome.model_b]
    alike = len(named) - len(outcomes)
    notes = [
        f"{alike} battle{'s' * (alike != 1)} of a model against itself (two names merged by `zhbench votes "
        "rename`) left out"
    ] * bool(alike)
    return outcomes, notes + shared_id_notes(shared)
