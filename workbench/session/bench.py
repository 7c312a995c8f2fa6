"""A bench session without a screen: N panes answering the same messages, turn by turn, every word recorded.

``Bench`` owns the panes' state, the turn count and the transcript. It runs nothing itself: ``send`` and
``regenerate`` hand back ``ReplyJob``s for the caller to run (the app in thread workers, a script in
threads), and the caller reports each job's progress and end back with the job's pane and generation.
A report about a pane's older load or reply (one that a newer one replaced) is ignored.
"""

from __future__ import annotations

import dataclasses
import itertools
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from zhbench.engines.api import ChatEngine, default_params
from zhbench.engines.registry import standin_label
from zhbench.engines.types import GenerationParams, Message, Reply, StopReason, stats_summary
from zhbench.workbench.session.branches import other_branch, show_branch, start_branch
from zhbench.workbench.session.identity import ModelIdentity, model_identity
from zhbench.workbench.session.panes import PANE_NAMES, PaneState, ReplyUnderway, ShownEntry, apply_values
from zhbench.workbench.session.records import (
    BodyRecord,
    BranchRecord,
    ChoiceRecord,
    ClearRecord,
    MessageRecord,
    ModelRecord,
)
from zhbench.workbench.session.transcripts import TranscriptWriter, now_iso

#: a streaming reply is written to the transcript at most this often (each write is fsynced)
CHECKPOINT_INTERVAL_S = 1.0


@dataclass(frozen=True)
class ReplyJob:
    """One reply to run: the pane and generation to report it under, the engine, and what it answers."""

    pane: str
    generation: int
    engine: ChatEngine
    history: list[Message]
    params: GenerationParams
    cancel: threading.Event


class Bench:
    """The panes of one session and the conversation they share."""

    def __init__(
        self,
        transcripts_folder: Path,
        *,
        pane_count: int = 2,
        param_overrides: Mapping[str, Mapping[str, Any]] | None = None,
        decoding: Mapping[str, object] | None = None,
        on_problem: Callable[[str], None] | None = None,
        arena: bool = False,
    ) -> None:
        if not 1 <= pane_count <= len(PANE_NAMES):
            raise ValueError(f"a bench has 1 to {len(PANE_NAMES)} panes, not {pane_count}")
        self.panes = [PaneState(name) for name in PANE_NAMES[:pane_count]]
        self.transcripts_folder = transcripts_folder
        self.param_overrides = dict(param_overrides or {})
        #: settings every model answers with, whatever its family (the arena's preset): a model that cannot
        #: take them keeps its defaults, and loading it reports why
        self.decoding = dict(decoding or {})
        self.on_problem = on_problem or _to_stderr
        #: a round of the blind arena: its transcript says so, and reopens read-only
        self.arena = arena
        self.transcript: TranscriptWriter | None = None
        self.turn = 0
        #: the ids of the messages and replies of this session so far (a reopened one's included): no two alike
        self.record_ids: set[str] = set()
        #: the settings a reopened session's pane goes on with, by the generation of the load bringing it back
        self._restoring: dict[str, tuple[int, dict[str, Any]]] = {}

    @property
    def names(self) -> list[str]:
        return [pane.name for pane in self.panes]

    def pane(self, name: str) -> PaneState:
        for pane in self.panes:
            if pane.name == name:
                return pane
        raise KeyError(f"no pane {name!r} (panes: {', '.join(self.names)})")

    # --- loading ---------------------------------------------------------------------------------

    def begin_load(self, name: str, label: str, *, keep_conversation: bool = False) -> int | None:
        """Mark ``name`` loading ``label``, whose model then carries on the pane's conversation or starts a new
        one; the generation to report the load under, or None while the pane replies."""
        state = self.pane(name)
        if state.busy:
            return None
        state.generation += 1
        state.loading = label
        state.load_keeps_conversation = keep_conversation
        state.load_started = time.monotonic()
        state.load_step = "starting"
        return state.generation

    def load_progressed(self, name: str, generation: int, step: str) -> None:
        state = self.current(name, generation)
        if state is not None and state.loading is not None:
            state.load_step = step

    def model_loaded(
        self, name: str, generation: int, engine: ChatEngine, *, demo: bool, identity: ModelIdentity | None = None
    ) -> str | None:
        """The pane now runs ``engine`` (with the pane's conversation, or a new one, as the load was begun),
        named by its ``identity`` (read here when not given: its weights may be hashed, so a screen reads it in
        its load worker); a problem with the configured settings as text, or None. Nothing happens for a load
        a newer one replaced."""
        state = self.current(name, generation)
        if state is None:
            return None
        identity = identity or model_identity(engine)
        state.label, state.fingerprint, state.loading = identity.id, identity.fingerprint, None
        state.engine = engine
        state.demo = demo
        state.random_weights = demo or is_standin(engine.describe().path)
        state.weight_bytes = engine.describe().weight_bytes
        state.params, problem = self.initial_params(engine)
        restoring = self._restoring.pop(name, None)
        if restoring is not None and restoring[0] == generation:
            problem = "; ".join(filter(None, [problem, self._restore(state, restoring[1])])) or None
        if not state.load_keeps_conversation:
            state.forget_conversation()
        kept = bool(state.shown)
        self._record_if_started(ModelRecord(name, now_iso(), state.model(), kept_conversation=kept))
        return problem

    def restore_settings(self, name: str, generation: int, settings: Mapping[str, Any]) -> None:
        """Have the load ``generation`` of pane ``name`` (a reopened session's model, loading again) go on with
        ``settings``, those of the session's last reply there: the pane's model record says what it uses."""
        self._restoring[name] = (generation, dict(settings))

    @staticmethod
    def _restore(state: PaneState, settings: Mapping[str, Any]) -> str | None:
        """The pane's settings with a reopened session's on top, or kept as they are (and why)."""
        assert state.params is not None
        try:
            restored = state.params.with_overrides(settings)
            restored.validate()
        except ValueError as exc:
            return f"Pane {state.name.upper()}: the session's settings no longer apply ({exc})"
        state.params = restored
        return None

    def unload(self, name: str) -> bool:
        """Drop the pane's model and conversation, so its memory can go before another model loads; False
        (nothing done) while it replies or loads."""
        state = self.pane(name)
        if state.busy or state.loading:
            return False
        state.engine, state.params, state.label, state.weight_bytes, state.fingerprint = None, None, None, None, None
        state.demo = state.random_weights = False
        state.forget_conversation()
        return True

    def load_failed(self, name: str, generation: int) -> str | None:
        """What was being loaded, for a failure of the pane's latest load; else None."""
        state = self.current(name, generation)
        if state is None:
            return None
        what, state.loading = state.loading, None
        return what or "?"

    def initial_params(self, engine: ChatEngine) -> tuple[GenerationParams, str | None]:
        """The engine's upstream defaults with the config's ``[params.FAMILY]`` on top (or without, and why),
        or with the bench's own ``decoding`` (or without, and why)."""
        params = default_params(engine)
        if self.decoding:
            try:
                # a setting only some families have (llama.cpp's min_p) is set where the family has it
                known = {f.name for f in dataclasses.fields(params)}
                decoded = params.with_overrides({k: v for k, v in self.decoding.items() if k in known})
                decoded.validate()
            except ValueError as exc:
                return params, f"cannot decode as asked ({exc})"
            return decoded, None
        overrides = self.param_overrides.get(engine.family)
        if not overrides:
            return params, None
        try:
            return apply_values(params, {k: str(v) for k, v in overrides.items()}), None
        except ValueError as exc:
            return params, f"config [params.{engine.family}]: {exc}; using upstream defaults"

    # --- replying --------------------------------------------------------------------------------

    def why_not_ready(self, name: str) -> str | None:
        """Why ``name`` cannot take a message now, or None when it can."""
        state = self.pane(name)
        if state.busy:
            return "is still replying (Esc stops it)"
        if state.loading:
            return "is still loading its model"
        if state.engine is None:
            return "has no model loaded"
        return None

    def send(self, text: str, targets: Sequence[str]) -> list[ReplyJob]:
        """``text`` as the user's message to each target pane that can take it; a reply job for each."""
        ready = [name for name in targets if self.why_not_ready(name) is None]
        if not ready:
            return []
        self.turn += 1
        return [self._user_message(name, text, ready) for name in ready]

    def edit_targets(self, name: str, message: str) -> list[str]:
        """The panes that show the user message ``message`` of pane ``name`` (the panes it went to, as long as
        they still show it): editing it edits it in each of them."""
        turn = next((e.turn for e in self.pane(name).shown if e.role == "user" and e.record_id == message), None)
        if turn is None:
            return []
        return [state.name for state in self.panes if any(_sent_in(e, turn) for e in state.shown)]

    def edit(self, name: str, message: str, text: str) -> list[ReplyJob]:
        """``text`` in place of the user message ``message`` of pane ``name``, in each of its ``edit_targets``
        that can take a message: each starts a branch there (the conversation from the earlier message on is
        kept, to be shown again) and gets ``text``; a reply job for each."""
        ready = [target for target in self.edit_targets(name, message) if self.why_not_ready(target) is None]
        if not ready:
            return []
        turn = next(e.turn for e in self.pane(name).shown if e.record_id == message)
        self.turn += 1
        jobs = []
        for target in ready:
            state = self.pane(target)
            replaced = next(e.record_id for e in state.shown if _sent_in(e, turn))
            message_id = self._message_id(target)
            start_branch(state, replaced, message_id)
            jobs.append(self._user_message(target, text, ready, message_id, edits=replaced))
        return jobs

    def choose_branch(self, name: str, step: int, message: str | None = None) -> str | None:
        """Go on from another branch of the pane's conversation, ``step`` branches from the one shown (-1: the
        one before) at the fork of the shown user message ``message``, or at the last fork the conversation
        passes: the next message's history carries it. The id of the message that begins it, or None when
        there is none that way, or while the pane replies."""
        state = self.pane(name)
        found = None if state.busy else other_branch(state, step, message)
        if found is None or not show_branch(state, found):
            return None
        self._record(BranchRecord(name, now_iso(), found))
        return found

    def _message_id(self, name: str) -> str:
        """A new id for the user's message of this turn to pane ``name``."""
        first = f"{name}-{self.turn}-user"
        return self._new_id(itertools.chain([first], (f"{first}-{n}" for n in itertools.count(2))))

    def _new_id(self, candidates: Iterable[str]) -> str:
        """The first of ``candidates`` that no message or reply of this session has, taken: the counts an id is
        made of (a pane's generation) start afresh when a session is reopened or a pane is added again, and
        every reader keeps only the last record of an id."""
        found = next(candidate for candidate in candidates if candidate not in self.record_ids)
        self.record_ids.add(found)
        return found

    def _user_message(
        self,
        name: str,
        text: str,
        recipients: Sequence[str],
        message_id: str | None = None,
        *,
        edits: str | None = None,
    ) -> ReplyJob:
        """The user's message ``text`` of this turn to pane ``name`` (under ``message_id``, else a new id),
        recorded; the job of its reply."""
        state = self.pane(name)
        message_id = message_id or self._message_id(name)
        state.history.append({"role": "user", "content": text})
        state.shown.append(ShownEntry("user", text, record_id=message_id, turn=self.turn))
        message = MessageRecord(
            id=message_id,
            pane=name,
            turn=self.turn,
            role="user",
            content=text,
            model=state.label,
            time=now_iso(),
            to=tuple(recipients),
            edits=edits,
        )
        self._record(message)
        return self._start_reply(name)

    def regenerate(self, name: str) -> ReplyJob | None:
        """Another version of the pane's last reply, asked in place of the one shown (which stays among the
        versions, to go back to), or None when the pane cannot reply now or has no message to answer."""
        state = self.pane(name)
        if self.why_not_ready(name) is not None or not state.history:
            return None
        regenerates = None
        if state.shown and state.shown[-1].role == "assistant":
            regenerates = state.shown.pop().record_id
            if state.history[-1]["role"] == "assistant":  # a failed reply was never fed back
                state.history.pop()
        return self._start_reply(name, regenerates=regenerates)

    def choose_reply(self, name: str, step: int) -> ShownEntry | None:
        """Go on from another version of the pane's last reply, ``step`` versions from the one shown (-1: the
        one before): the next message's history carries it. That version, or None when there is none that
        way, or while the pane replies."""
        state = self.pane(name)
        index = state.chosen_version + step
        if state.busy or state.reply_version() is None or not 0 <= index < len(state.reply_versions):
            return None
        entry = state.reply_versions[index]
        state.chosen_version, state.shown[-1] = index, entry
        if state.history[-1]["role"] == "assistant":
            state.history.pop()
        if entry.fed_back is not None:
            state.history.append({"role": "assistant", "content": entry.fed_back})
        self._record(ChoiceRecord(name, now_iso(), entry.record_id))
        return entry

    def _start_reply(self, name: str, *, regenerates: str | None = None) -> ReplyJob:
        state = self.pane(name)
        assert state.engine is not None and state.params is not None
        state.generation += 1
        record_id = self._new_id(f"{name}-{self.turn}-{n}" for n in itertools.count(state.generation))
        state.reply = ReplyUnderway(record_id, threading.Event(), state.params, now_iso(), regenerates=regenerates)
        return ReplyJob(name, state.generation, state.engine, list(state.history), state.params, state.reply.cancel)

    def reply_progressed(self, name: str, generation: int, piece: str, reasoning: str = "") -> bool:
        """Add a streamed piece of the answer (and of the thinking) to the reply underway, checkpointing it
        now and then; whether it was current."""
        state = self.replying(name, generation)
        if state is None or state.reply is None:
            return False
        underway = state.reply
        underway.text += piece
        underway.reasoning += reasoning
        now = time.monotonic()
        if now - underway.last_checkpoint >= CHECKPOINT_INTERVAL_S:
            underway.last_checkpoint = now
            self._record(self._reply_record(state, underway.text, partial=True, reasoning=underway.reasoning))
        return True

    def reply_finished(self, name: str, generation: int, reply: Reply) -> ShownEntry | None:
        """Record a finished (or stopped) reply and feed it back; what the pane shows, or None if stale."""
        state = self.replying(name, generation)
        if state is None:
            return None
        stopped = reply.stats.stop_reason is StopReason.CANCELLED
        self._record(self._reply_record(state, reply.text, partial=reply.partial, reply=reply))
        stats = stats_summary(reply.stats.to_dict(), reply.params.to_dict())
        entry = ShownEntry(
            "assistant", reply.text, stats, stopped, reasoning=reply.reasoning, reply_stats=reply.stats.to_dict()
        )
        return self._end_reply(state, entry, reply.history_content)

    def reply_failed(self, name: str, generation: int, error: str, partial: Reply | None) -> ShownEntry | None:
        """Record a failed reply, keeping what came; it is not fed back to the model."""
        state = self.replying(name, generation)
        if state is None or state.reply is None:
            return None
        text = partial.text if partial else state.reply.text
        reasoning = partial.reasoning if partial else state.reply.reasoning
        stats = (
            stats_summary(partial.stats.to_dict(), partial.params.to_dict())
            if partial
            else "no stats: the reply failed before it began"
        )
        self._record(self._reply_record(state, text, partial=True, reply=partial, error=error, reasoning=reasoning))
        return self._end_reply(state, ShownEntry("assistant", text, stats, error=error, reasoning=reasoning), None)

    def _end_reply(self, state: PaneState, entry: ShownEntry, history_content: str | None) -> ShownEntry:
        """End the reply underway, the newest version of the last reply; ``history_content`` is what goes back
        into the conversation (None: a failed reply, shown and saved but not fed back)."""
        underway = state.reply
        assert underway is not None
        state.reply = None
        entry = dataclasses.replace(
            entry, record_id=underway.record_id, fed_back=history_content or None, model=state.label
        )
        state.add_reply(entry, regenerates=underway.regenerates is not None)
        return entry

    def stop(self, names: Sequence[str]) -> None:
        """Ask the replies underway in ``names`` to stop (each ends within one token or chunk), recording
        what each has said so far: the app may exit before a reply reports its end (Ctrl+Q mid-reply),
        and the last checkpoint can be up to ``CHECKPOINT_INTERVAL_S`` old."""
        for name in names:
            state = self.pane(name)
            underway = state.reply
            if underway is not None:
                underway.cancel.set()
                if underway.text or underway.reasoning:
                    self._record(self._reply_record(state, underway.text, partial=True, reasoning=underway.reasoning))

    def _reply_record(
        self,
        state: PaneState,
        text: str,
        *,
        partial: bool,
        reply: Reply | None = None,
        error: str | None = None,
        reasoning: str | None = None,
    ) -> MessageRecord:
        underway = state.reply
        assert underway is not None
        return MessageRecord(
            id=underway.record_id,
            pane=state.name,
            turn=self.turn,
            role="assistant",
            content=text,
            model=state.label,
            time=now_iso(),
            family=state.engine.family if state.engine else None,
            params=(reply.params if reply else underway.params).to_dict(),
            stats=reply.stats.to_dict() if reply else None,
            partial=partial,
            started=underway.started,
            error=error,
            regenerates=underway.regenerates,
            reasoning=reply.reasoning if reply else reasoning,
            served_model=reply.served_model if reply else None,
        )

    # --- the panes themselves --------------------------------------------------------------------

    def clear(self, name: str) -> bool:
        """Forget the pane's conversation (recorded when there was one); False (nothing done) while it replies."""
        state = self.pane(name)
        if state.busy:
            return False
        if state.shown:
            state.forget_conversation()
            self._record_if_started(ClearRecord(name, now_iso()))
        return True

    def add_pane(self) -> str | None:
        """Another pane after the last, empty; its name, or None when every name is taken. It is in the
        transcript once a model loads into it (a ``ModelRecord`` of its own)."""
        if len(self.panes) == len(PANE_NAMES):
            return None
        self.panes.append(PaneState(PANE_NAMES[len(self.panes)]))
        return self.panes[-1].name

    def remove_pane(self) -> str | None:
        """Take the last pane away (its model and conversation with it); its name, or None while it replies or
        loads, or when it is the only one. The transcript keeps its conversation and records that it ended
        empty, so a reopened session leaves it out."""
        state = self.panes[-1]
        if len(self.panes) == 1 or state.busy or state.loading:
            return None
        if state.engine is not None or state.shown:
            self._record_if_started(ModelRecord(state.name, now_iso(), None))
        self.panes.pop()
        return state.name

    def swap(self, first: str = "a", second: str = "b") -> bool:
        """Exchange what two panes hold (models, settings, conversations); False while either is busy."""
        one, other = self.pane(first), self.pane(second)
        if any(state.busy or state.loading for state in (one, other)):
            return False
        kept = PaneState(first)
        kept.take_contents_of(one)
        one.take_contents_of(other)
        other.take_contents_of(kept)
        for state in (one, other):
            self._record_if_started(ModelRecord(state.name, now_iso(), state.model(), swapped=True))
        return True

    def held_memory(self) -> tuple[tuple[str, str, int | None], ...]:
        """``(pane, device, weight bytes)`` of each loaded model, for the memory meter."""
        return tuple(
            (state.name, state.engine.describe().device or "remote", state.weight_bytes)
            for state in self.panes
            if state.engine is not None
        )

    def current(self, name: str, generation: int) -> PaneState | None:
        """The pane's state if a report is about its latest load or reply (not one a newer one replaced)."""
        state = self.pane(name)
        return state if generation == state.generation else None

    def replying(self, name: str, generation: int) -> PaneState | None:
        """The pane's state if a report is about the reply underway there."""
        state = self.current(name, generation)
        return state if state is not None and state.reply is not None else None

    # --- the transcript --------------------------------------------------------------------------

    def _record_if_started(self, record: BodyRecord) -> None:
        """A change to a pane (model, clear, swap) belongs in the transcript once a session has begun;
        before that, the session record that starts it says which models the panes hold."""
        if self.transcript is not None:
            self._record(record)

    def _record(self, record: BodyRecord) -> None:
        """Append to this session's transcript, starting it (with every pane's model) at its first record."""
        try:
            if self.transcript is None:
                panes = {state.name: state.model() for state in self.panes}
                self.transcript = TranscriptWriter(self.transcripts_folder, panes, arena=self.arena)
            self.transcript.write(record)
        except OSError as exc:
            self.on_problem(f"the transcript could not be written: {exc}")


def _sent_in(entry: ShownEntry, turn: int | None) -> bool:
    """Whether ``entry`` is the user's message of ``turn``."""
    return entry.role == "user" and entry.turn == turn


def _to_stderr(problem: str) -> None:
    """Where a bench without a screen reports a problem (stdout may carry its results)."""
    print(f"zhbench: {problem}", file=sys.stderr)


def is_standin(path: str | None) -> bool:
    """Whether a model's files carry a stand-in's label (random weights written by zhbench)."""
    if path is None:
        return False
    folder = Path(path)
    return standin_label(folder if folder.is_dir() else folder.parent) is not None
