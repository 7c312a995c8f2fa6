"""A saved session read back into panes, to be shown again and continued in the same transcript file.

``reopen`` replays a session's records in order, as the bench made them (``replay.py``): each pane's
conversation (what it shows, every version of its last reply, every branch of an edited message and the
one on show, what the next message carries), the model each pane ran last and the settings its last reply
used. ``continue_in`` puts that into a ``Bench`` whose next records are appended to the session's own
file. Which model to load for a pane is ``model_spec``'s answer; a pane
whose model is no longer here keeps its conversation on show, read-only, with the reason.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from zhbench.engines.remote.server import RemoteServer
from zhbench.workbench.session.bench import Bench
from zhbench.workbench.session.panes import PANE_NAMES, PaneState
from zhbench.workbench.session.records import PaneModel
from zhbench.workbench.session.replay import replay
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
    """Replay ``session``'s records into pane states: the same conversations, versions, branches and choices."""
    done = replay(session.header, session.records)
    damage = session.damage_note("shown up to them")
    return Reopened(session, done.panes, done.models, done.params, done.turn, [damage] if damage else [])


def continue_in(bench: Bench, reopened: Reopened) -> None:
    """Put a reopened session's conversations into ``bench`` (whose panes are empty), so that the next message
    continues it: the same turn numbers, appended to the same transcript file (``OSError`` if it cannot be)."""
    bench.transcript = TranscriptWriter.resume(reopened.session)
    bench.turn = reopened.turn
    bench.record_ids = {message.id for message in reopened.session.messages}
    for state in bench.panes:
        saved = reopened.panes.get(state.name)
        if saved is not None:
            state.history, state.shown = list(saved.history), list(saved.shown)
            state.reply_versions, state.chosen_version = list(saved.reply_versions), saved.chosen_version
            state.forks = list(saved.forks)


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
