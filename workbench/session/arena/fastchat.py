"""FastChat's clean-battle JSON, both ways: rank its battles here, or ours with FastChat's tools.

A file is a JSON list of battles, each an object with ``model_a``, ``model_b`` and ``winner`` (``model_a``,
``model_b``, ``tie`` or ``tie (bothbad)``), as ``fastchat/serve/monitor/clean_battle_data.py`` writes
them; ``anony``, ``conversation_a`` and ``conversation_b`` are read when present. Any other field is
ignored; a battle that cannot be read is skipped and counted, by reason.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from zhbench.engines.errors import HistoryError
from zhbench.engines.types import validate_messages
from zhbench.workbench.session.arena.style import StyleCounts, style_of_conversation
from zhbench.workbench.session.arena.votes import ArenaDataError, Battle, Outcome, Verdict

WINNERS: dict[str, Verdict] = {"model_a": "a", "model_b": "b", "tie": "tie", "tie (bothbad)": "bothbad"}
FASTCHAT_WINNER: dict[Verdict, str] = {verdict: winner for winner, verdict in WINNERS.items()}


@dataclass(frozen=True)
class BattleFile:
    """The battles read from a file, and how many were skipped, by reason."""

    outcomes: list[Outcome]
    skipped: dict[str, int]


def read_fastchat_battles(path: Path) -> BattleFile:
    """The battles of a FastChat clean-battle file; a file that is not one raises ``ArenaDataError``."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ArenaDataError(f"{path}: no such battles file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ArenaDataError(f"{path}: unreadable battles file ({exc})") from None
    except json.JSONDecodeError as exc:
        raise ArenaDataError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(data, list):
        raise ArenaDataError(f"{path}: not a FastChat battles file (expected a JSON list of battles)")
    return parse_fastchat_battles(data)


def parse_fastchat_battles(items: Iterable[object]) -> BattleFile:
    """Battles from FastChat's records; what is not a battle is counted in ``skipped``."""
    outcomes: list[Outcome] = []
    skipped: Counter[str] = Counter()
    for item in items:
        outcome = _outcome_of(item)
        if isinstance(outcome, str):
            skipped[outcome] += 1
        else:
            outcomes.append(outcome)
    return BattleFile(outcomes, dict(skipped))


def fastchat_record(battle: Battle) -> dict[str, Any]:
    """A battle as FastChat writes one, plus zhbench's ``identity_leaked`` and ``source``."""
    return {
        "question_id": battle.id,
        "model_a": battle.model_a.id,
        "model_b": battle.model_b.id,
        "winner": FASTCHAT_WINNER[battle.verdict],
        "conversation_a": battle.turns_a,
        "conversation_b": battle.turns_b,
        "turn": sum(message["role"] == "user" for message in battle.turns_a),
        "anony": battle.anonymous,
        "tstamp": datetime.fromisoformat(battle.time).timestamp(),
        "identity_leaked": battle.leaked,
        "source": battle.source,
    }


def to_fastchat_json(battles: Iterable[Battle]) -> str:
    """A FastChat clean-battle file of ``battles``."""
    return json.dumps([fastchat_record(battle) for battle in battles], ensure_ascii=False, indent=1) + "\n"


def _outcome_of(item: object) -> Outcome | str:
    """The battle a record holds, or why it was skipped."""
    if not isinstance(item, Mapping):
        return "not an object"
    model_a, model_b, winner = item.get("model_a"), item.get("model_b"), item.get("winner")
    if not isinstance(model_a, str) or not isinstance(model_b, str) or not model_a or not model_b:
        return "no model_a or model_b"
    if model_a == model_b:
        return "the same model on both sides"
    if not isinstance(winner, str) or winner not in WINNERS:
        return f"winner {winner!r}"
    return Outcome(
        model_a,
        model_b,
        WINNERS[winner],
        anonymous=item.get("anony", True) is not False,
        leaked=item.get("identity_leaked", False) is True,
        style_a=_style_of(item.get("conversation_a")),
        style_b=_style_of(item.get("conversation_b")),
    )


def _style_of(conversation: object) -> StyleCounts | None:
    """Style counts of a FastChat conversation, or None when it is missing or not a list of messages."""
    if conversation is None:
        return None
    try:
        return style_of_conversation(validate_messages(conversation))
    except HistoryError:
        return None
