"""FastChat's clean-battle JSON, both ways: rank its battles here, or ours with FastChat's tools.

A file is a JSON list of battles, each an object with ``model_a``, ``model_b`` and ``winner`` (``model_a``,
``model_b``, ``tie`` or ``tie (bothbad)``), as ``fastchat/serve/monitor/clean_battle_data.py`` writes
them; ``anony``, zhbench's ``identity_leaked`` and ``source`` (``"judge"``: a judge model's vote),
``conv_metadata`` and ``conversation_a``/``conversation_b`` are read when present. Any other field is
ignored; a battle that cannot be read is skipped and counted, by reason.

Style counts come from ``conv_metadata`` when a battle has it, as FastChat's style control reads them
(``fastchat/serve/monitor/rating_systems.py``, ``preprocess_for_style``: each count an integer or a dict
of integers summed; length as ``sum_assistant_{a,b}_tokens``), so a file with no conversations (the
"simple" clean-battle mode) is ranked with style control too; else from the conversations. The export
writes ``conv_metadata`` so that FastChat's own code runs on it unmodified; zhbench's votes do not know
tokens, so their length is in characters, which the export says in ``conv_metadata.length_unit``.
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
from zhbench.workbench.session.arena.style import LengthUnit, StyleCounts, style_of_conversation
from zhbench.workbench.session.arena.votes import ArenaDataError, Battle, Outcome, Verdict

#: FastChat's ``conv_metadata`` key of each style count, side A's (``_b`` for side B's), in the order of
#: ``StyleCounts.as_tuple`` (its ``STYLE_CONTROL_ELEMENTS_V1``)
METADATA_KEYS: tuple[str, ...] = ("sum_assistant_{}_tokens", "header_count_{}", "list_count_{}", "bold_count_{}")
#: the most a count may be: a larger one is a damaged record, not a reply
MAX_COUNT = 10**12

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
        "conv_metadata": conv_metadata(style_of_conversation(battle.turns_a), style_of_conversation(battle.turns_b)),
    }


def conv_metadata(style_a: StyleCounts, style_b: StyleCounts) -> dict[str, Any]:
    """A battle's style counts as FastChat's ``conv_metadata``, plus the unit its length is in."""
    metadata: dict[str, Any] = {}
    for side, style in (("a", style_a), ("b", style_b)):
        metadata |= {key.format(side): count for key, count in zip(METADATA_KEYS, style.as_tuple(), strict=True)}
    return metadata | {"length_unit": style_a.length_unit}


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
    styles: tuple[StyleCounts | None, StyleCounts | None] | None = _styles_of_metadata(item.get("conv_metadata"))
    if styles is None:
        styles = _style_of(item.get("conversation_a")), _style_of(item.get("conversation_b"))
    return Outcome(
        model_a,
        model_b,
        WINNERS[winner],
        anonymous=item.get("anony", True) is not False,
        leaked=item.get("identity_leaked", False) is True,
        style_a=styles[0],
        style_b=styles[1],
        source="judge" if item.get("source") == "judge" else "human",
    )


def _styles_of_metadata(metadata: object) -> tuple[StyleCounts, StyleCounts] | None:
    """Both sides' style counts from FastChat's ``conv_metadata``; None when it lacks one (then the
    conversations are read). Length is in tokens unless it says ``length_unit: characters``."""
    if not isinstance(metadata, Mapping):
        return None
    unit: LengthUnit = "characters" if metadata.get("length_unit") == "characters" else "tokens"
    sides = []
    for side in ("a", "b"):
        counts = [_count(metadata.get(key.format(side))) for key in METADATA_KEYS]
        if any(count is None for count in counts):
            return None
        length, headers, list_items, bold = (int(count or 0) for count in counts)
        sides.append(StyleCounts(length, headers, list_items, bold, length_unit=unit))
    return sides[0], sides[1]


def _count(value: object) -> int | None:
    """A count as FastChat reads it: an integer, or a dict of integers summed; None if it is neither."""
    parts = list(value.values()) if isinstance(value, Mapping) else [value]
    counts = [part for part in parts if isinstance(part, int) and not isinstance(part, bool) and 0 <= part <= MAX_COUNT]
    return sum(counts) if len(counts) == len(parts) else None


def _style_of(conversation: object) -> StyleCounts | None:
    """Style counts of a FastChat conversation, or None when it is missing or not a list of messages."""
    if conversation is None:
        return None
    try:
        return style_of_conversation(validate_messages(conversation))
    except HistoryError:
        return None
