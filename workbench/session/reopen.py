"""A saved session read back into panes, to be shown again and continued in the same transcript file.

``reopen`` replays a session's records in order, as the bench made them: each pane's conversation (what
it shows, every version of its last reply, what the next message carries), the model each pane ran last
and the settings its last reply used. ``continue_in`` puts that into a ``Bench`` whose next records are
appended to the session's own file. Which model to load for a pane is ``model_spec``'s answer; a pane
whose model is no longer here keeps its conversation on show, read-only, with the reason.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from zhbench.engines.remote.server import RemoteServer
from zhbench.engines.types import stats_summary
from zhbench.workbench.session.bench import Bench
from zhbench.workbench.session.panes import PANE_NAMES, PaneState, ShownEntry
from zhbench.workbench.session.records import ChoiceRecord, ClearRecord, MessageRecord, ModelRecord, PaneModel
from zhbench.workbench.session.transcripts import Session, TranscriptWriter


@dataclass
class Reopened:
    """A session as its panes stood at its last record."""

    session: Session
    #: each pane's conversation (no engine: the caller loads one)
    panes: dict[str, PaneState]
    #: the model each pane ran last (None: the pane was empty)
    models: dict[str, PaneModel | None]
    #: the settings each pane's last reply was made with (else its model's), as ``GenerationParams.to_dict()``
    params: dict[str, dict[str, Any]]
    turn: int
    notes: list[str] = field(default_factory=list)

    @property
    def arena(self) -> bool:
        return self.session.header.arena

    @property
    def pane_count(self) -> int:
        """How many panes the session ended with: up to the last that holds a model or a conversation (one
        added during the session included, one taken away left out: it ended empty); at least one."""
        used = [PANE_NAMES.find(name) for name, state in self.panes.items() if state.shown or self.models.get(name)]
        return max(used, default=0) + 1


def reopen(session: Session) -> Reopened:
    """Replay ``session``'s records into pane states: the same conversations, versions and choices."""
    panes = {name: PaneState(name) for name in session.header.panes}
    models = dict(session.header.panes)
    params: dict[str, dict[str, Any]] = {
        name: dict(model.params) for name, model in models.items() if model and model.params
    }
    turn = 0
    swapping: str | None = None
    for record in session.records:
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
                state.forget_conversation()
        elif isinstance(record, ClearRecord):
            state.forget_conversation()
        elif isinstance(record, ChoiceRecord):
            _choose(state, record.reply)
        elif record.role == "user":
            turn = max(turn, record.turn)
            state.history.append({"role": "user", "content": record.content})
            state.shown.append(ShownEntry("user", record.content))
        else:
            _take_reply(state, record)
            if record.params:
                params[record.pane] = dict(record.params) | _configured_seed(models.get(record.pane))
    notes = []
    if session.damaged_lines:
        notes.append(f"{session.damaged_lines} damaged line(s) of this session could not be read: shown up to them")
    return Reopened(session, panes, models, params, turn, notes)


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


def continue_in(bench: Bench, reopened: Reopened) -> None:
    """Put a reopened session's conversations into ``bench`` (whose panes are empty), so that the next message
    continues it: the same turn numbers, appended to the same transcript file (``OSError`` if it cannot be)."""
    bench.transcript = TranscriptWriter.resume(reopened.session)
    bench.turn = reopened.turn
    for state in bench.panes:
        saved = reopened.panes.get(state.name)
        if saved is not None:
            state.history, state.shown = list(saved.history), list(saved.shown)
            state.reply_versions, state.chosen_version = list(saved.reply_versions), saved.chosen_version


def model_spec(model: PaneModel | None, servers: Mapping[str, RemoteServer]) -> tuple[str | None, str | None]:
    """``(spec, None)``: what to load for a pane's recorded model (a path, or SERVER/MODEL of the config); or
    ``(None, why)`` when it cannot be loaded on this machine."""
    if model is None:
        return None, "the pane had no model"
    if model.base_url is not None:
        for name, server in servers.items():
            if server.base_url.rstrip("/") == model.base_url.rstrip("/"):
                return f"{name}/{model.server_model or model.model}", None
        return None, f"its server ({model.base_url}) is not in the config any more"
    if model.path is None:
        return None, "the transcript does not say where its model was"
    if not Path(model.path).exists():
        return None, f"{model.path} is no longer on this machine"
    return model.path, None
