"""A session's records replayed in order, as the bench made them: each pane's conversation as it stood.

What a pane shows, every version of its last reply, every branch of its edited messages and which one is on
show, what the next message carries, the model each pane ran last and the settings its last reply used.
Reopening a session (``reopen.py``) goes on from this; an export of the conversation as shown
(``transcripts.py``) leaves out what it set aside.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from zhbench.engines.types import stats_summary
from zhbench.workbench.session.branches import BranchPlace, branch_places, set_aside, show_branch, start_branch
from zhbench.workbench.session.panes import PaneState, ShownEntry
from zhbench.workbench.session.records import (
    BodyRecord,
    BranchRecord,
    ChoiceRecord,
    ClearRecord,
    MessageRecord,
    ModelRecord,
    PaneModel,
    SessionRecord,
)


@dataclass
class Replayed:
    """Each pane of a session as it stood at its last record."""

    #: each pane's conversation (no engine)
    panes: dict[str, PaneState]
    #: the model each pane ran last (None: the pane was empty)
    models: dict[str, PaneModel | None]
    #: the settings each pane's last reply was made with (else its model's), as ``GenerationParams.to_dict()``
    params: dict[str, dict[str, Any]]
    turn: int
    #: every user message that begins a branch (an edited one, or an edit), by id: its place at its fork
    branches: dict[str, BranchPlace] = field(default_factory=dict)
    #: the ids of the messages and replies on branches that were not on show when their conversation ended
    set_aside: set[str] = field(default_factory=set)


def replay(header: SessionRecord, records: Sequence[BodyRecord]) -> Replayed:
    """Replay ``records`` into pane states: the same conversations, versions, branches and choices."""
    panes = {name: PaneState(name) for name in header.panes}
    models = dict(header.panes)
    params: dict[str, dict[str, Any]] = {
        name: dict(model.params) for name, model in models.items() if model and model.params
    }
    done = Replayed(panes, models, params, 0)
    swapping: str | None = None
    for record in records:
        state = panes.setdefault(record.pane, PaneState(record.pane))
        if isinstance(record, ModelRecord):
            models[record.pane] = record.model
            params.pop(record.pane, None)
            if record.model and record.model.params:
                params[record.pane] = dict(record.model.params)
            if record.swapped:  # a swap writes one record for each of its two panes, one after the other
                if swapping is None:
                    swapping = record.pane
                else:
                    _swap(panes[swapping], state)
                    swapping = None
            elif not record.kept_conversation:
                _forget(done, state)
        elif isinstance(record, ClearRecord):
            _forget(done, state)
        elif isinstance(record, ChoiceRecord):
            _choose(state, record.reply)
        elif isinstance(record, BranchRecord):
            show_branch(state, record.message)
        elif record.role == "user":
            done.turn = max(done.turn, record.turn)
            if record.edits is not None:
                start_branch(state, record.edits, record.id)
            state.history.append({"role": "user", "content": record.content})
            state.shown.append(ShownEntry("user", record.content, record_id=record.id, turn=record.turn))
        else:
            _take_reply(state, record)
            if record.params:
                params[record.pane] = dict(record.params) | _configured_seed(models.get(record.pane))
    for state in panes.values():
        _note_branches(done, state)
    return done


def _forget(done: Replayed, state: PaneState) -> None:
    """The pane's conversation ends (cleared, or a new model started another): what it set aside stays so."""
    _note_branches(done, state)
    state.forget_conversation()


def _note_branches(done: Replayed, state: PaneState) -> None:
    done.branches |= branch_places(state)
    done.set_aside |= set_aside(state)


def _configured_seed(model: PaneModel | None) -> dict[str, Any]:
    """The seed the pane was set to (None: draw one for each reply), rather than the one its last reply drew."""
    if model is None or model.params is None or "seed" not in model.params:
        return {}
    return {"seed": model.params["seed"]}


def _swap(one: PaneState, other: PaneState) -> None:
    kept = PaneState(one.name)
    kept.take_contents_of(one)
    one.take_contents_of(other)
    other.take_contents_of(kept)


def _take_reply(state: PaneState, record: MessageRecord) -> None:
    """A reply as the bench ended it: a regenerated one replaces the version shown, and joins its versions."""
    if record.regenerates is not None and state.shown and state.shown[-1].role == "assistant":
        state.shown.pop()
        if state.history and state.history[-1]["role"] == "assistant":
            state.history.pop()
    stats = record.stats or {}
    entry = ShownEntry(
        "assistant",
        record.content,
        stats_summary(stats, record.params or {}) if stats else None,
        stopped=stats.get("stop_reason") == "cancelled",
        error=record.error,
        reasoning=record.reasoning or "",
        record_id=record.id,
        fed_back=record.content if record.error is None and record.content else None,
        reply_stats=record.stats,
        model=record.model,
    )
    state.add_reply(entry, regenerates=record.regenerates is not None)


def _choose(state: PaneState, reply: str) -> None:
    """The conversation goes on from another version of the last reply."""
    found = [i for i, entry in enumerate(state.reply_versions) if entry.record_id == reply]
    if not found or not state.shown or state.shown[-1].role != "assistant":
        return
    entry = state.reply_versions[found[0]]
    state.chosen_version, state.shown[-1] = found[0], entry
    if state.history and state.history[-1]["role"] == "assistant":
        state.history.pop()
    if entry.fed_back is not None:
        state.history.append({"role": "assistant", "content": entry.fed_back})
