"""The zhbench app: a model list, chat panes A and B answering the same message at once, and a memory meter.

Threading rule: slow work (finding models, loading one, generating, reading GPU memory) runs only in
thread workers. They never touch a widget or the pane state; they post messages, and the handlers
below, on the UI thread, change state and the screen. torch and transformers are imported by the
worker that loads the first model, never before the first screen is painted.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from textual import on
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Footer, Header

from engines.api import ChatEngine, default_params
from engines.errors import GenerationError, ZhbenchError
from engines.types import Reply, StopReason, stats_summary
from themes import STYLESHEET, THEME_VARIABLE_DEFAULTS, THEMES
from widgets.chat_pane import ChatPane
from widgets.composer import Composer
from widgets.gpu_meter import GpuMeter, MemoryReading
from widgets.model_list import ModelList, ModelRow
from widgets.params_dialog import ParamsDialog
from workbench.config import Config, demo_models_dir, exports_dir, load_config, remember_theme, transcripts_dir
from workbench.memory import NvmlReader, read_memory
from workbench.model_rows import DEMO_MODELS, DEMO_PREFIX, demo_model_path, model_rows
from workbench.panes import (
    PANE_KEYS,
    PaneState,
    ReplyUnderway,
    ShownEntry,
    apply_values,
    editable_values,
    params_summary,
)
from workbench.transcripts import TranscriptError, TranscriptWriter, now_iso, read_session, to_json, to_markdown

#: a streaming reply is written to the transcript at most this often (each write is fsynced)
CHECKPOINT_INTERVAL_S = 1.0
MEMORY_POLL_S = 1.0
#: one model loads at a time: transformers' lazy imports are not safe from two threads at once
_LOAD_LOCK = threading.Lock()

MemoryReader = Callable[[Iterable[tuple[str, str, int | None]]], MemoryReading]


# --- what workers report ------------------------------------------------------------------------


@dataclass
class ModelsDiscovered(Message):
    rows: list[ModelRow]
    any_local: bool


@dataclass
class LoadProgressed(Message):
    pane: str
    generation: int
    step: str


@dataclass
class ModelLoaded(Message):
    pane: str
    generation: int
    engine: ChatEngine
    weight_bytes: int | None
    demo: bool


@dataclass
class ModelLoadFailed(Message):
    pane: str
    generation: int
    reason: str


@dataclass
class ReplyChunkArrived(Message):
    pane: str
    generation: int
    piece: str


@dataclass
class ReplyFinished(Message):
    pane: str
    generation: int
    reply: Reply


@dataclass
class ReplyFailed(Message):
    pane: str
    generation: int
    error: str
    partial: Reply | None


@dataclass
class MemoryRead(Message):
    reading: MemoryReading


class PieceBatcher:
    """Hands streamed text on in batches: a piece goes at once unless the last batch left less than
    ``interval`` ago; then it waits for the next piece (or ``flush``). A fast model posts tens of
    messages a second instead of one per token; a slow one is never held back.

    Used by the one thread that generates the reply.
    """

    def __init__(self, send: Callable[[str], None], interval: float = 1 / 30) -> None:
        self.send = send
        self.interval = interval
        self.pending = ""
        self.sent_at = 0.0

    def add(self, piece: str) -> None:
        self.pending += piece
        now = time.monotonic()
        if now - self.sent_at >= self.interval:
            self.sent_at = now
            self.flush()

    def flush(self) -> None:
        if self.pending:
            text, self.pending = self.pending, ""
            self.send(text)


class ZhbenchApp(App[None]):
    """Two models side by side, answering the same message at once."""

    TITLE = "zhbench"
    CSS_PATH = STYLESHEET
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "stop", "Stop", id="stop"),
        Binding("ctrl+r", "regenerate", "Regenerate", id="regenerate"),
        Binding("ctrl+l", "clear", "Clear", id="clear"),
        Binding("f2", "edit_params", "Parameters", id="params"),
        Binding("f4", "swap", "Swap A/B", id="swap"),
        Binding("ctrl+o", "switch_pane", "Other pane", id="switch-pane", show=False),
        Binding("ctrl+s", "export", "Export", id="export"),
        Binding("ctrl+f", "find_model", "Find model", id="find-model", show=False),
        Binding("f9", "toggle_models", "Models", id="toggle-models"),
    ]

    def __init__(
        self,
        *,
        preload: dict[str, str] | None = None,
        config: Config | None = None,
        transcripts_folder: Path | None = None,
        demo_folder: Path | None = None,
        offer_demos: bool = True,
        memory_reader: MemoryReader | None = None,
        device: str | None = None,
    ) -> None:
        super().__init__()
        self.config = config or load_config()
        self.preload = {k: v for k, v in (preload or {}).items() if v}
        self.transcripts_folder = transcripts_folder or transcripts_dir()
        self.demo_folder = demo_folder or demo_models_dir()
        self.offer_demos = offer_demos
        nvml = NvmlReader()
        self.memory_reader: MemoryReader = memory_reader or (lambda panes: read_memory(nvml, panes))
        self.device = device
        self.panes: dict[str, PaneState] = {key: PaneState() for key in PANE_KEYS}
        self.active_pane = "a"
        self.transcript: TranscriptWriter | None = None
        self.turn = 0
        self.rows: list[ModelRow] = []
        #: (pane, device, weight bytes) of each loaded model, replaced whole by handlers for the meter's worker
        self.held_memory: tuple[tuple[str, str, int | None], ...] = ()

    # --- layout -------------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield Header(show_clock=False, icon="⚖")
        with Horizontal(id="body"):
            yield ModelList(id="models")
            with Horizontal(id="panes"):
                yield ChatPane("a", id="pane-a")
                yield ChatPane("b", id="pane-b")
        yield Composer(id="composer")
        yield GpuMeter(id="meter")
        yield Footer()

    def get_theme_variable_defaults(self) -> dict[str, str]:
        """Our stylesheet's own variables, for themes that do not set them (Textual's built-in ones)."""
        return {**super().get_theme_variable_defaults(), **THEME_VARIABLE_DEFAULTS}

    def on_mount(self) -> None:
        for theme in THEMES:
            self.register_theme(theme)
        if self.config.theme in self.available_themes:
            self.theme = self.config.theme
        else:
            self.notify(f"unknown theme {self.config.theme!r} in the config; using zhbench-dark", severity="warning")
            self.theme = "zhbench-dark"
        self.theme_changed_signal.subscribe(self, self._theme_changed)
        if self.config.keymap:
            self.set_keymap(self.config.keymap)
        for problem in self.config.problems:
            self.notify(problem, title="config", severity="warning", timeout=10)
        self._meter = self.query_one(GpuMeter)
        self._mark_active()
        self.query_one(Composer).focus()
        self.set_interval(0.25, self._tick_loading)
        self.run_worker(self._poll_memory, thread=True, group="memory", exit_on_error=False)
        self.run_worker(self._discover_models, thread=True, group="discover", exit_on_error=False)
        for pane, spec in self.preload.items():
            self.load_model(pane, spec, spec)

    def pane_widget(self, pane: str) -> ChatPane:
        return self.query_one(f"#pane-{pane}", ChatPane)

    def _screen_gone(self) -> bool:
        """Whether the main screen is already torn down: a worker may report while the app exits."""
        return not self._meter.is_attached

    def exit(self, *args: Any, **kwargs: Any) -> None:
        """Stop every reply first, so no generating thread outlives the app by more than a token."""
        for state in self.panes.values():
            if state.reply is not None:
                state.reply.cancel.set()
        super().exit(*args, **kwargs)

    def _theme_changed(self, theme: Any) -> None:
        problem = remember_theme(self.config, theme.name)
        if problem:
            self.notify(problem, severity="warning")

    # --- finding and loading models -----------------------------------------------------------

    def _discover_models(self) -> None:
        from engines.hub.discovery import local_models

        gpus, _ = NvmlReader().read()
        local = local_models(self.config.model_dirs)
        self.post_message(ModelsDiscovered(model_rows(local, gpu=bool(gpus)), any_local=bool(local)))

    @on(ModelsDiscovered)
    def _models_discovered(self, event: ModelsDiscovered) -> None:
        if self._screen_gone():
            return
        self.rows = event.rows
        self.query_one(ModelList).set_rows(event.rows)
        idle = all(p.engine is None and p.loading is None for p in self.panes.values())
        if self.offer_demos and not event.any_local and not self.preload and idle:
            self.notify("No models found on this machine: loading two tiny demo models (random weights).")
            for pane, (key, family) in zip(PANE_KEYS, DEMO_MODELS, strict=True):
                self.load_model(pane, key, f"tiny {family} (demo)")

    @on(ModelList.LoadRequested)
    def _load_requested(self, event: ModelList.LoadRequested) -> None:
        pane = self.active_pane if event.pane == "active" else event.pane
        if not event.row.available:
            self.notify(
                f"{event.row.name} is not on this machine: download it (for example `hf download {event.row.key}`),"
                " then it shows up here.",
                severity="warning",
                timeout=8,
            )
            return
        label = event.row.name + (" (demo)" if event.row.source == "demo" else "")
        self.load_model(pane, event.row.key, label)

    def load_model(self, pane: str, spec: str, label: str) -> None:
        """Load ``spec`` into ``pane`` in a worker; the pane keeps working (or stays empty) until it is done."""
        state = self.panes[pane]
        if state.busy:
            self.notify(f"Pane {pane.upper()} is replying: stop it (Esc) before loading another model.")
            return
        state.generation += 1
        state.loading = label
        state.load_started = time.monotonic()
        state.load_step = "starting"
        self._tick_loading()
        generation = state.generation
        self.run_worker(
            lambda: self._load_worker(pane, generation, spec),
            thread=True,
            group=f"load-{pane}",
            exit_on_error=False,
        )

    def _load_worker(self, pane: str, generation: int, spec: str) -> None:
        def step(text: str) -> None:
            self.post_message(LoadProgressed(pane, generation, text))

        try:
            if not _LOAD_LOCK.acquire(blocking=False):
                step("waiting for the other pane's model to finish loading")
                _LOAD_LOCK.acquire()
            try:
                # Library warnings would only reach the app's log; errors come back as exceptions.
                os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
                step("importing torch and transformers")
                from engines.registry import load_engine

                if spec.startswith(DEMO_PREFIX):
                    step("writing the tiny demo model (random weights; only the first time)")
                    path = str(demo_model_path(spec, self.demo_folder))
                else:
                    path = spec
                step("reading the weights")
                strategy = self.config.strategy_for(spec)
                engine = load_engine(path, device=self.device, extra={"strategy": strategy} if strategy else None)
            finally:
                _LOAD_LOCK.release()
        except ZhbenchError as exc:
            self.post_message(ModelLoadFailed(pane, generation, str(exc)))
        except MemoryError:
            self.post_message(ModelLoadFailed(pane, generation, "out of memory while loading this model"))
        except Exception as exc:  # a failed load is shown in its pane, never fatal to the app
            reason = f"{type(exc).__name__}: {exc}"
            if "out of memory" in str(exc).lower():
                reason = f"out of memory while loading ({exc})"
            self.post_message(ModelLoadFailed(pane, generation, reason))
        else:
            demo = spec.startswith(DEMO_PREFIX)
            self.post_message(ModelLoaded(pane, generation, engine, engine.describe().weight_bytes, demo))

    def _tick_loading(self) -> None:
        for pane, state in self.panes.items():
            if state.loading is not None:
                elapsed = time.monotonic() - state.load_started
                spinner = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"[int(elapsed * 4) % 10]
                self.pane_widget(pane).set_status(
                    f"{spinner} loading {state.loading}: {state.load_step}… {elapsed:.1f}s"
                )

    @on(LoadProgressed)
    def _load_progressed(self, event: LoadProgressed) -> None:
        state = self.panes[event.pane]
        if event.generation == state.generation and state.loading is not None:
            state.load_step = event.step

    @on(ModelLoaded)
    def _model_loaded(self, event: ModelLoaded) -> None:
        state = self._current(event.pane, event.generation)
        if state is None:
            return
        label, state.loading = state.loading or "?", None
        state.engine = event.engine
        state.label = label
        state.demo = event.demo
        state.params = self._initial_params(event.engine)
        state.history.clear()
        state.shown.clear()
        widget = self.pane_widget(event.pane)
        widget.clear()
        widget.set_status(None)
        state.weight_bytes = event.weight_bytes
        self._update_held_memory()
        self._show_header(event.pane)
        self._record_if_started({"type": "model", "pane": event.pane, "time": now_iso(), **(state.describe() or {})})

    def _initial_params(self, engine: ChatEngine) -> Any:
        params = default_params(engine)
        overrides = self.config.params.get(engine.family)
        if overrides:
            try:
                params = apply_values(params, {k: str(v) for k, v in overrides.items()})
            except ValueError as exc:
                self.notify(f"config [params.{engine.family}]: {exc}; using upstream defaults", severity="warning")
        return params

    @on(ModelLoadFailed)
    def _model_load_failed(self, event: ModelLoadFailed) -> None:
        state = self._current(event.pane, event.generation)
        if state is None:
            return
        what, state.loading = state.loading, None
        self.pane_widget(event.pane).set_status(f"could not load {what}:\n{event.reason}", error=True)

    def _show_header(self, pane: str) -> None:
        state = self.panes[pane]
        if state.engine is None or state.params is None:
            return
        info = state.engine.describe()
        title = state.label or "?"
        detail = f"{info.family} · {info.placement()}"
        if state.demo:
            detail = "DEMO · random weights, replies are noise · " + detail
        self.pane_widget(pane).set_model(title, f"{detail}\n{params_summary(state.params)}")

    # --- sending and replying -----------------------------------------------------------------

    @on(Composer.Submitted)
    def _submitted(self, event: Composer.Submitted) -> None:
        targets = list(PANE_KEYS) if event.target == "both" else [self.active_pane]
        if not self.send(event.text, targets):
            event.composer.text = event.text  # nothing was sent: give the text back

    def send(self, text: str, targets: list[str]) -> bool:
        """Send ``text`` as the user's message to each target pane that can take it; whether any could."""
        ready = [p for p in targets if self.panes[p].engine is not None and not self.panes[p].busy]
        for pane in targets:
            if pane not in ready:
                state = self.panes[pane]
                why = (
                    "is still replying (Esc stops it)"
                    if state.busy
                    else "is still loading its model"
                    if state.loading
                    else "has no model loaded"
                )
                self.notify(f"Pane {pane.upper()} {why}.", severity="warning")
        if not ready:
            return False
        self.turn += 1
        for pane in ready:
            state = self.panes[pane]
            state.history.append({"role": "user", "content": text})
            state.shown.append(ShownEntry("user", text))
            self.pane_widget(pane).add_message(text, role="user")
            self._record(
                {
                    "type": "message",
                    "id": f"{pane}-{self.turn}-user",
                    "pane": pane,
                    "turn": self.turn,
                    "to": ready,
                    "role": "user",
                    "content": text,
                    "model": state.label,
                    "time": now_iso(),
                }
            )
            self._start_reply(pane)
        return True

    def _start_reply(self, pane: str, *, regenerates: str | None = None) -> None:
        state = self.panes[pane]
        assert state.engine is not None and state.params is not None
        state.generation += 1
        params = state.params
        record_id = f"{pane}-{self.turn}-{state.generation}"
        state.reply = ReplyUnderway(record_id, threading.Event(), params, now_iso(), regenerates=regenerates)
        note = None
        if params.num_beams > 1:
            note = f"… beam search with {params.num_beams} beams cannot stream: the reply appears when it is done"
        self.pane_widget(pane).begin_reply(note=note)
        engine, history, cancel, generation = state.engine, list(state.history), state.reply.cancel, state.generation
        self.run_worker(
            lambda: self._reply_worker(pane, generation, engine, history, params, cancel),
            thread=True,
            group=f"reply-{pane}",
            exit_on_error=False,
        )

    def _reply_worker(
        self, pane: str, generation: int, engine: ChatEngine, history: list[Any], params: Any, cancel: threading.Event
    ) -> None:
        batch = PieceBatcher(lambda text: self.post_message(ReplyChunkArrived(pane, generation, text)))
        try:
            reply = engine.reply(history, params, cancel=cancel, on_text=batch.add)
        except GenerationError as exc:
            batch.flush()
            partial = exc.partial if isinstance(exc.partial, Reply) else None
            self.post_message(ReplyFailed(pane, generation, str(exc), partial))
        except Exception as exc:  # shown in the pane; the other pane and the app go on
            self.post_message(ReplyFailed(pane, generation, f"{type(exc).__name__}: {exc}", None))
        else:
            batch.flush()
            self.post_message(ReplyFinished(pane, generation, reply))

    @on(ReplyChunkArrived)
    def _reply_chunk(self, event: ReplyChunkArrived) -> None:
        state = self._replying(event.pane, event.generation)
        if state is None or state.reply is None:
            return
        underway = state.reply
        underway.text += event.piece
        view = self.pane_widget(event.pane).current_reply
        if view is not None:
            view.append(event.piece)
        now = time.monotonic()
        if now - underway.last_checkpoint >= CHECKPOINT_INTERVAL_S:
            underway.last_checkpoint = now
            self._record(self._reply_record(event.pane, underway.text, partial=True))

    def _current(self, pane: str, generation: int) -> PaneState | None:
        """The pane's state if a worker's report is about the pane's latest load or reply (not one a
        newer load or reply replaced, and not after the screen is gone)."""
        state = self.panes[pane]
        return None if self._screen_gone() or generation != state.generation else state

    def _replying(self, pane: str, generation: int) -> PaneState | None:
        """The pane's state if a worker's report is about the reply underway there."""
        state = self._current(pane, generation)
        return state if state is not None and state.reply is not None else None

    def _reply_record(
        self, pane: str, text: str, *, partial: bool, reply: Reply | None = None, error: str | None = None
    ) -> dict[str, Any]:
        state = self.panes[pane]
        underway = state.reply
        assert underway is not None
        record: dict[str, Any] = {
            "type": "message",
            "id": underway.record_id,
            "pane": pane,
            "turn": self.turn,
            "role": "assistant",
            "content": text,
            "model": state.label,
            "family": state.engine.family if state.engine else None,
            "params": (reply.params if reply else underway.params).to_dict(),
            "stats": reply.stats.to_dict() if reply else None,
            "partial": partial,
            "started": underway.started,
            "time": now_iso(),
        }
        if error:
            record["error"] = error
        if underway.regenerates:
            record["regenerates"] = underway.regenerates
        return record

    @on(ReplyFinished)
    def _reply_finished(self, event: ReplyFinished) -> None:
        if self._replying(event.pane, event.generation) is None:
            return
        reply = event.reply
        stopped = reply.stats.stop_reason is StopReason.CANCELLED
        self._record(self._reply_record(event.pane, reply.text, partial=reply.partial, reply=reply))
        self._end_reply(event.pane, reply.text, stats_summary(reply.stats.to_dict()), stopped=stopped)

    @on(ReplyFailed)
    def _reply_failed(self, event: ReplyFailed) -> None:
        state = self._replying(event.pane, event.generation)
        if state is None or state.reply is None:
            return
        partial = event.partial
        text = partial.text if partial else state.reply.text
        stats = stats_summary(partial.stats.to_dict()) if partial else "no stats: the reply failed before it began"
        self._record(self._reply_record(event.pane, text, partial=True, reply=partial, error=event.error))
        self._end_reply(event.pane, text, stats, error=event.error)

    def _end_reply(self, pane: str, text: str, stats: str, *, stopped: bool = False, error: str | None = None) -> None:
        state = self.panes[pane]
        assert state.reply is not None
        state.last_reply_id = state.reply.record_id
        state.reply = None
        view = self.pane_widget(pane).current_reply
        if view is not None:
            view.finish(text, stats=stats, stopped=stopped, error=error)
        if error is None and text:  # a failed reply is shown and saved, but not fed back to the model
            state.history.append({"role": "assistant", "content": text})
        state.shown.append(ShownEntry("assistant", text, stats, stopped, error))

    def _record_if_started(self, record: dict[str, Any]) -> None:
        """A change to a pane (model, clear, swap) belongs in the transcript once a session has begun;
        before that, the session record that starts it says which models the panes hold."""
        if self.transcript is not None:
            self._record(record)

    def _record(self, record: dict[str, Any]) -> None:
        """Append to this session's transcript, starting it (with both panes' models) at its first record."""
        try:
            if self.transcript is None:
                panes = {key: state.describe() for key, state in self.panes.items()}
                self.transcript = TranscriptWriter(self.transcripts_folder, {"panes": panes})
            self.transcript.write(record)
        except OSError as exc:
            self.notify(f"the transcript could not be written: {exc}", severity="error", timeout=10)

    # --- actions ------------------------------------------------------------------------------

    def _target_panes(self) -> list[str]:
        """The pane that has focus, or both when the focus is elsewhere (the composer, the model list)."""
        focused = self.focused
        for pane in PANE_KEYS:
            widget = self.pane_widget(pane)
            if focused is not None and (focused is widget or widget in focused.ancestors):
                return [pane]
        return list(PANE_KEYS)

    def action_stop(self) -> None:
        for pane in self._target_panes():
            underway = self.panes[pane].reply
            if underway is not None:
                underway.cancel.set()

    def action_regenerate(self) -> None:
        for pane in self._target_panes():
            state = self.panes[pane]
            if state.engine is None or state.busy or not state.history:
                continue
            regenerates = None
            if state.history[-1]["role"] == "assistant":
                state.history.pop()
                regenerates = state.last_reply_id
            if state.shown and state.shown[-1].role == "assistant":
                state.shown.pop()
                widget = self.pane_widget(pane)
                if widget.current_reply is not None:
                    widget.current_reply.remove()
            self._start_reply(pane, regenerates=regenerates)

    def action_clear(self) -> None:
        for pane in self._target_panes():
            state = self.panes[pane]
            if state.busy:
                self.notify(f"Pane {pane.upper()} is replying: stop it (Esc) first.", severity="warning")
                continue
            state.history.clear()
            state.shown.clear()
            self.pane_widget(pane).clear()
            self._record_if_started({"type": "clear", "pane": pane, "time": now_iso()})

    def action_swap(self) -> None:
        if any(state.busy or state.loading for state in self.panes.values()):
            self.notify("Wait for both panes to finish (or stop them) before swapping.", severity="warning")
            return
        self.panes["a"], self.panes["b"] = self.panes["b"], self.panes["a"]
        self._update_held_memory()
        for pane in PANE_KEYS:
            self._redraw(pane)
            model = self.panes[pane].describe() or {}
            self._record_if_started({"type": "model", "pane": pane, "time": now_iso(), "swapped": True, **model})

    def _update_held_memory(self) -> None:
        self.held_memory = tuple(
            (pane, state.engine.describe().device or "remote", state.weight_bytes)
            for pane, state in self.panes.items()
            if state.engine is not None
        )

    def _redraw(self, pane: str) -> None:
        state = self.panes[pane]
        widget = self.pane_widget(pane)
        widget.clear()
        widget.set_status(None)
        if state.engine is None:
            widget.show_no_model()
            return
        self._show_header(pane)
        for entry in state.shown:
            if entry.role == "user":
                widget.add_message(entry.text, role="user")
            else:
                widget.begin_reply().finish(
                    entry.text, stats=entry.stats or "", stopped=entry.stopped, error=entry.error
                )

    def action_switch_pane(self) -> None:
        self.active_pane = "b" if self.active_pane == "a" else "a"
        self._mark_active()

    def _mark_active(self) -> None:
        for pane in PANE_KEYS:
            self.pane_widget(pane).set_class(pane == self.active_pane, "active")
        self.query_one(Composer).border_title = f"Message · active pane: {self.active_pane.upper()}"

    def on_descendant_focus(self, event: Any) -> None:
        for pane in PANE_KEYS:
            widget = self.pane_widget(pane)
            if event.widget is widget or widget in event.widget.ancestors:
                self.active_pane = pane
                self._mark_active()

    def action_edit_params(self) -> None:
        pane = self.active_pane
        state = self.panes[pane]
        engine, params = state.engine, state.params
        if engine is None or params is None:
            self.notify(f"Pane {pane.upper()} has no model loaded.", severity="warning")
            return

        def validate(values: dict[str, str]) -> str | None:
            try:
                apply_values(params, values)
            except ValueError as exc:
                return str(exc)
            return None

        def applied(values: dict[str, str] | None) -> None:
            if values is not None and self.panes[pane].engine is engine:
                self.panes[pane].params = apply_values(params, values)
                self._show_header(pane)

        title = f"Parameters of pane {pane.upper()}: {state.label} (upstream defaults: {engine.family})"
        dialog = ParamsDialog(title, editable_values(params), editable_values(default_params(engine)), validate)
        self.push_screen(dialog, applied)

    def action_export(self) -> None:
        if self.transcript is None:
            self.notify("Nothing to export yet: this session has no messages.", severity="warning")
            return
        try:
            paths = export_session(self.transcript.path, exports_dir())
        except (OSError, TranscriptError) as exc:
            self.notify(f"export failed: {exc}", severity="error")
            return
        self.notify("Exported to " + " and ".join(str(p) for p in paths), timeout=10)

    def action_find_model(self) -> None:
        self.query_one(ModelList).display = True
        self.query_one("#model-filter").focus()

    def action_toggle_models(self) -> None:
        models = self.query_one(ModelList)
        models.display = not models.display

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        yield SystemCommand("Stop generating", "Stop the reply of the focused pane, or of both (Esc)", self.action_stop)
        yield SystemCommand("Regenerate", "Another reply to the last message (Ctrl+R)", self.action_regenerate)
        yield SystemCommand("Clear conversation", "Clear the focused pane, or both (Ctrl+L)", self.action_clear)
        yield SystemCommand("Swap panes", "Exchange pane A and pane B (F4)", self.action_swap)
        yield SystemCommand("Switch active pane", "Ctrl+T sends to the active pane (Ctrl+O)", self.action_switch_pane)
        yield SystemCommand("Edit parameters", "Decoding settings of the active pane (F2)", self.action_edit_params)
        yield SystemCommand("Show or hide the model list", "More room for the panes (F9)", self.action_toggle_models)
        yield SystemCommand("Export session", "Write this session as Markdown and JSON (Ctrl+S)", self.action_export)
        for pane in PANE_KEYS:
            engine = self.panes[pane].engine
            for command, help_text in (engine.chat_commands() if engine else {}).items():
                yield SystemCommand(
                    f"Pane {pane.upper()}: {command}",
                    f"{engine.family} chat command: {help_text}",
                    lambda pane=pane, command=command: self.run_chat_command(pane, command),
                )
        for row in self.rows:
            if row.available:
                for pane in PANE_KEYS:
                    yield SystemCommand(
                        f"Load {row.name} into {pane.upper()}",
                        f"{row.family} · {row.key}",
                        lambda row=row, pane=pane: self.load_model(pane, row.key, row.name),
                    )

    def run_chat_command(self, pane: str, command: str) -> None:
        """A model's own chat command (RWKV's ``+reset``, ``+gen TEXT``…): sent to ``pane`` at once when it
        takes nothing more, else put in the composer to be completed and sent to that pane."""
        head, _, placeholder = command.partition(" ")
        if placeholder:  # "+gen TEXT"
            start = head + " "
        elif command.endswith("=X"):  # "-temp=X", written inside a message
            start = command.removesuffix("X")
        else:
            self.send(command, [pane])
            return
        self.active_pane = pane
        self._mark_active()
        composer = self.query_one(Composer)
        composer.text = start + composer.text
        composer.move_cursor(composer.document.end)
        composer.focus()
        self.notify(f"Complete the command; Ctrl+T sends it to pane {pane.upper()}.")

    # --- the memory meter ---------------------------------------------------------------------

    def _poll_memory(self) -> None:
        from textual.worker import get_current_worker

        worker = get_current_worker()
        while not worker.is_cancelled:
            try:
                reading = self.memory_reader(self.held_memory)
            except Exception as exc:  # the meter says what went wrong and keeps polling
                reading = MemoryReading(gpu_note=f"memory unreadable ({type(exc).__name__}: {exc})")
            self.post_message(MemoryRead(reading))
            deadline = time.monotonic() + MEMORY_POLL_S
            while time.monotonic() < deadline and not worker.is_cancelled:
                time.sleep(0.05)

    @on(MemoryRead)
    def _memory_read(self, event: MemoryRead) -> None:
        if self._screen_gone():
            return
        self._meter.show(event.reading)


def export_session(session_file: Path, folder: Path) -> list[Path]:
    """Write a session as Markdown and JSON into ``folder``; return both paths."""
    import json

    session = read_session(session_file)
    folder.mkdir(parents=True, exist_ok=True)
    markdown = folder / f"{session.id}.md"
    markdown.write_text(to_markdown(session), encoding="utf-8")
    as_json = folder / f"{session.id}.json"
    as_json.write_text(json.dumps(to_json(session), ensure_ascii=False, indent=2), encoding="utf-8")
    return [markdown, as_json]
