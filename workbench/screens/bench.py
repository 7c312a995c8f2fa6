"""The bench: a model list, chat panes answering the same message at once, a composer and a memory meter.

Wiring only: the session's state and records live in ``workbench.session.bench.Bench``; slow work runs in
``workbench.workers``; this screen starts workers, and its handlers hand their reports to the bench and
draw the result.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from functools import partial
from typing import TYPE_CHECKING, ClassVar

from textual import events, on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Footer, Header

from zhbench.plain.memory_reading import MemoryReading
from zhbench.plain.model_rows import DEMO_MODELS
from zhbench.widgets.chat_pane import ChatPane, MessageView
from zhbench.widgets.composer import Composer
from zhbench.widgets.fitted_footer import FittedFooterScreen
from zhbench.widgets.gpu_meter import GpuMeter
from zhbench.widgets.model_list import ModelList
from zhbench.widgets.pane_switcher import PaneSwitcher
from zhbench.widgets.params_dialog import ParamsDialog
from zhbench.widgets.question import QuestionDialog
from zhbench.workbench import workers
from zhbench.workbench.commands import Command, ScreenCommands, keyed
from zhbench.workbench.screens.branching import BRANCH_BINDINGS, Branching
from zhbench.workbench.screens.model_downloads import DownloadingModelList, RescanAsked
from zhbench.workbench.screens.pane_deck import ON_DISK, PaneDeck
from zhbench.workbench.screens.template_choice import ask_for_template
from zhbench.workbench.session.arena.leaks import maker_names
from zhbench.workbench.session.arena.rounds import VERDICT_NAMES, ArenaError, battle_of_round
from zhbench.workbench.session.arena.votes import ArenaDataError, Battle, Verdict, VoteStore
from zhbench.workbench.session.bench import Bench
from zhbench.workbench.session.panes import (
    APP_PANES,
    apply_values,
    editable_values,
    preset_values,
    switch_names,
    value_problems,
)
from zhbench.workbench.session.reopen import Reopened, continue_in, model_spec
from zhbench.workbench.session.transcripts import TranscriptError, export_descriptions, export_session

if TYPE_CHECKING:
    from zhbench.workbench.app import ZhbenchApp


class ArenaAsked(Message):
    """Open the arena over the models on offer."""


class SessionsAsked(Message):
    """Open the past sessions; the one chosen reopens in the bench."""


class LeaderboardAsked(Message):
    """Open the leaderboard of the arena's votes."""


#: the width (columns) from which the model list shows beside the panes
NARROW_BELOW = 110
#: the app's quit key, named among the bench's first keys too: the footer puts the app's own keys after every
#: key of the screen, where a narrow footer has no room left
QUIT_BINDING = Binding("ctrl+q", "app.quit", "Quit", id="quit", priority=True, tooltip="Stop every reply and quit")
#: the keys between the versions of a regenerated reply: the one shown is the one the conversation goes on from
EARLIER_REPLY = "Show, and go on from, the version of the last reply before the one shown"
LATER_REPLY = "Show, and go on from, the version of the last reply after the one shown"


class BenchScreen(FittedFooterScreen):
    """Two models side by side, answering the same message at once."""

    COMMANDS: ClassVar = Screen.COMMANDS | {ScreenCommands}
    #: below 110 columns the screen is ``-narrow``: the model list hides (themes/zhbench.tcss)
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (NARROW_BELOW, "-wide")]  # noqa: RUF012 (Textual's own declaration style)
    #: in the footer's order: the keys a newcomer needs first
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "stop", "Stop", id="stop"),
        Binding("f9", "toggle_models", "Models", id="toggle-models"),
        Binding("ctrl+o", "switch_pane", "Pane", id="switch-pane", tooltip="Make the next pane the active one"),
        Binding("ctrl+f", "find_model", "Find", id="find-model", tooltip="Type in the model filter"),
        QUIT_BINDING,
        Binding("ctrl+r", "regenerate", "Regenerate", id="regenerate"),
        # alt, not ctrl: the composer's ctrl+←/→ move by word
        Binding("alt+left", "other_reply(-1)", "Earlier reply", id="earlier-reply", show=False, tooltip=EARLIER_REPLY),
        Binding("alt+right", "other_reply(1)", "Later reply", id="later-reply", show=False, tooltip=LATER_REPLY),
        *BRANCH_BINDINGS,
        Binding("ctrl+l", "clear", "Clear", id="clear"),
        Binding("f2", "edit_params", "Parameters", id="params"),
        Binding("f4", "swap", "Swap A/B", id="swap", tooltip="Exchange the active pane and the next"),
        Binding("ctrl+s", "export", "Export", id="export"),
        Binding("f3", "rescan", "Rescan", id="rescan", show=False),
        Binding("ctrl+g", "sessions", "Sessions", id="sessions", show=False, tooltip="Reopen or search past sessions"),
    ]

    app: ZhbenchApp
    #: the model list beside the panes (the blind arena has none: it would say what is on offer)
    SHOWS_MODEL_LIST: ClassVar[bool] = True
    #: what holds the panes and runs their replies (the arena's names no model before the vote)
    DECK: ClassVar[type[PaneDeck]] = PaneDeck
    #: the screen's actions a screen built on the bench keeps, None for all: every other action of the screen,
    #: the bench's own included (those added later too), is off there (its key does nothing and leaves the
    #: footer); Textual's own screen actions (copying the selected text) stay
    ALLOWED_ACTIONS: ClassVar[frozenset[str] | None] = None
    #: the keys that leave the footer, in this order, while it is too narrow for every key: each stays bound
    #: and is in the palette
    FOOTER_GIVES_WAY: ClassVar[tuple[str, ...]] = ("export", "swap", "params", "clear", "regenerate")

    def __init__(self, bench: Bench, *, preload: dict[str, str], offer_demos: bool) -> None:
        super().__init__()
        self.bench = bench
        self.preload = preload
        self.offer_demos = offer_demos
        self._ready = False  # every widget mounted
        #: the panes and their replies (the arena's are blind until the vote)
        self.deck = self.DECK(self, bench)
        #: editing an earlier message, and the branches that makes
        self.branching = Branching(self, self.deck)

    # --- layout -------------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        # The parts under the panes sit in a container of their own: a repaint inside the panes then
        # leaves them alone (Textual renders every widget whose container overlaps a change).
        yield Header(show_clock=False, icon="⚖")
        yield PaneSwitcher(id="pane-switcher")
        with Horizontal(id="body"):
            if self.SHOWS_MODEL_LIST:
                yield DownloadingModelList(preferred_quant=self.app.config.quant, id="models")
            yield from self.deck.panes()
        with Vertical(id="bottom"):
            yield Composer(id="composer")
            yield GpuMeter(id="meter")
            yield Footer()

    def on_mount(self) -> None:
        for pane, spec in self.preload.items():
            self.load_model(pane, spec, spec)
        # The containers' own children are mounted after this screen: the rest waits for the first frame.
        self.call_after_refresh(self._set_up)

    def _set_up(self) -> None:
        self._ready = True
        self.deck.activate(self.deck.active)
        self.query_one(Composer).focus()
        self._tick_loading()
        self.set_interval(0.25, self._tick_loading)
        if self.app.discovered is not None:  # the models were found before this screen was up
            self.show_models(self.app.discovered)

    def pane_widget(self, pane: str) -> ChatPane:
        return self.deck.pane_widget(pane)

    def on_unmount(self) -> None:
        self.deck.gone = True

    def on_resize(self, event: events.Resize) -> None:
        self.call_after_refresh(self.deck.fit)  # once the body has its new width

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Every action on the bench; on a screen built on it, those of its ``ALLOWED_ACTIONS`` only."""
        allowed = self.ALLOWED_ACTIONS
        return allowed is None or action in allowed or hasattr(Screen, f"action_{action}")

    def _screen_gone(self) -> bool:
        """Whether the screen is torn down: a worker may report while the app exits."""
        return self.deck.gone

    # --- finding and loading models -----------------------------------------------------------

    def show_models(self, event: workers.ModelsDiscovered) -> None:
        """The app found the models on this machine: list them, and offer the demos when there are none."""
        if self._screen_gone() or not self._ready:  # once ready, this screen asks the app for them
            return
        self.query_one(ModelList).set_rows(event.rows)
        idle = all(p.engine is None and p.loading is None for p in self.bench.panes)
        if self.offer_demos and not event.any_local and not self.preload and idle:
            self.notify("No models found on this machine: loading two tiny demo models (random weights).")
            for pane, (key, family) in zip(self.bench.names, DEMO_MODELS, strict=False):
                self.load_model(pane, key, f"tiny {family} (demo)")

    @on(ModelList.LoadRequested)
    def _load_requested(self, event: ModelList.LoadRequested) -> None:
        pane = self.active_pane if event.pane == "active" else event.pane
        if not event.row.available:
            self.notify(
                f"{event.row.name} is not on this machine: press d on its row to download it "
                f"(or `zhbench pull {event.row.hf_id or event.row.modelscope_id or event.row.id}`).",
                severity="warning",
                timeout=8,
            )
            return
        label = event.row.name + (" (demo)" if event.row.source == "demo" else "")
        self.request_load(pane, event.row.key, label)

    def action_rescan(self) -> None:
        self.notify("Looking for models again…")
        self.post_message(RescanAsked())

    def request_load(self, pane: str, spec: str, label: str) -> None:
        """Load ``spec`` into ``pane`` as a person asked: into a pane with a conversation, only once they say
        whether the new model carries it on or starts a new one."""
        state = self.bench.pane(pane)
        if not state.shown or state.busy:  # nothing to lose, or a load that is refused anyway
            self.load_model(pane, spec, label)
            return

        def answered(choice: str | None) -> None:
            if choice is not None:
                self.load_model(pane, spec, label, keep_conversation=choice == "keep")

        question = (
            f"Pane {pane.upper()} has a conversation with {state.label} ({len(state.shown)} messages). "
            f"{label} can carry it on (the replies so far become its history) or start a new one. "
            f"{ON_DISK}"
        )
        choices = [("keep", "Carry it on"), ("new", "New conversation")]
        self.app.push_screen(QuestionDialog(f"Load {label} into pane {pane.upper()}?", question, choices), answered)

    def load_model(self, pane: str, spec: str, label: str, *, keep_conversation: bool = False) -> None:
        """Load ``spec`` into ``pane`` in a worker; the pane keeps working (or stays empty) until it is done,
        then goes on with its conversation or a new one."""
        generation = self.bench.begin_load(pane, label, keep_conversation=keep_conversation)
        if generation is None:
            self.notify(f"Pane {pane.upper()} is replying: stop it (Esc) before loading another model.")
            return
        if self._ready:
            self._tick_loading()
        config = self.app.config
        self.run_worker(
            lambda: workers.load_model(
                self.post_message,
                pane,
                generation,
                spec,
                device=self.app.device,
                strategy=config.strategy_for(spec),
                demo_folder=self.app.demo_folder,
                servers=config.servers,
                templates=config.templates,
            ),
            thread=True,
            group=f"load-{pane}",
            exit_on_error=False,
        )

    def _tick_loading(self) -> None:
        for state in self.bench.panes:
            if state.loading is not None:
                elapsed = time.monotonic() - state.load_started
                spinner = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"[int(elapsed * 4) % 10]
                self.pane_widget(state.name).set_status(
                    f"{spinner} loading {state.loading}: {state.load_step}… {elapsed:.1f}s"
                )

    @on(workers.LoadProgressed)
    def _load_progressed(self, event: workers.LoadProgressed) -> None:
        self.bench.load_progressed(event.pane, event.generation, event.step)

    @on(workers.ModelLoaded)
    def _model_loaded(self, event: workers.ModelLoaded) -> None:
        if self._screen_gone():
            return
        problem = self.bench.model_loaded(
            event.pane, event.generation, event.engine, demo=event.demo, identity=event.identity
        )
        if self.bench.current(event.pane, event.generation) is None:
            return
        if problem:
            self.report_load_problem(event.pane, problem)
        self.deck.redraw(event.pane)

    def report_load_problem(self, pane: str, problem: str) -> None:
        """A model loaded, but not with the settings asked for (the config's ``[params.FAMILY]``)."""
        self.notify(problem, severity="warning")

    @on(workers.ModelLoadFailed)
    def _model_load_failed(self, event: workers.ModelLoadFailed) -> None:
        if self._screen_gone():
            return
        what = self.bench.load_failed(event.pane, event.generation)
        if what is None:
            return
        if event.template is not None and self.SHOWS_MODEL_LIST:  # the question names it: not in a blind arena
            ask_for_template(self, event.pane, what, event.template)
        else:
            self.show_load_failure(event.pane, what, event.reason)

    def show_load_failure(self, pane: str, what: str, reason: str) -> None:
        """A model that did not load: its pane says which and why."""
        self.pane_widget(pane).set_status(f"could not load {what}:\n{reason}", error=True)

    # --- sending and replying -----------------------------------------------------------------

    @on(Composer.Submitted)
    def _submitted(self, event: Composer.Submitted) -> None:
        targets = self.bench.names if event.target == "both" else [self.active_pane]
        if not self.deck.send(event.text, targets):
            event.composer.text = event.text  # nothing was sent: give the text back

    @on(workers.ReplyChunkArrived)
    def _reply_chunk(self, event: workers.ReplyChunkArrived) -> None:
        self.deck.reply_chunk(event)

    @on(workers.ReplyFinished)
    def _reply_finished(self, event: workers.ReplyFinished) -> None:
        self.deck.reply_finished(event)

    @on(workers.ReplyFailed)
    def _reply_failed(self, event: workers.ReplyFailed) -> None:
        self.deck.reply_failed(event)

    # --- the palette --------------------------------------------------------------------------

    def palette_commands(self) -> Iterator[Command]:
        """Everything the palette offers on the bench, in the order it lists them: every action, each pane's
        chat commands, loading any model on offer into any pane."""
        yield self._stop_command()
        yield self._regenerate_command()
        earlier, later = partial(self.action_other_reply, -1), partial(self.action_other_reply, 1)
        yield keyed(self, "earlier-reply", "Earlier reply version", "Show and go on from the one before", earlier)
        yield keyed(self, "later-reply", "Later reply version", "Show and go on from the one after", later)
        yield from self.branching.commands(self.active_pane)
        yield self._clear_command()
        pair = "pane A and pane B" if len(self.bench.names) == 2 else "the active pane and the next"
        yield keyed(self, "swap", "Swap panes", f"Exchange {pair}", self.action_swap)
        yield keyed(
            self, "switch-pane", "Switch active pane", "Make the next pane the one Send active sends to",
            self.action_switch_pane,
        )
        if len(self.bench.names) < APP_PANES[-1]:
            yield "Add pane", "Another pane beside these (up to four)", self.deck.add_pane
        if len(self.bench.names) > APP_PANES[0]:
            remove = "Take the last pane away (asked first if it holds a conversation)"
            yield "Remove pane", remove, self.deck.remove_pane
        yield keyed(self, "params", "Edit parameters", "Decoding settings of the active pane", self.action_edit_params)
        yield keyed(
            self, "toggle-models", "Show or hide the model list", "More room for the panes", self.action_toggle_models
        )
        yield keyed(
            self, "export", "Export session", "Write this session as " + export_descriptions(), self.action_export
        )
        yield keyed(
            self, "sessions", "Sessions", "Reopen a past session, or find one by its text", self.action_sessions
        )
        yield keyed(
            self, "rescan", "Rescan models", "Look for models on this machine and the servers again",
            self.action_rescan,
        )
        for models in self.query(DownloadingModelList):  # none where the model list is not shown
            yield "Cancel download", "Stop the download started from the model list", models.cancel_download
        yield (
            "Arena: blind battle",
            "Two models drawn at random answer unnamed; vote, then see",
            lambda: self.post_message(ArenaAsked()),
        )
        for verdict, meaning in VERDICT_NAMES.items():
            yield (
                f"Vote (named): {meaning}",
                "On the conversations of A and B, knowing the models; left out of the ranking by default",
                partial(self.action_vote_named, verdict),
            )
        yield (
            "Leaderboard",
            "Ratings of the arena's votes with 95% intervals, and win rates",
            lambda: self.post_message(LeaderboardAsked()),
        )
        for state in self.bench.panes:
            engine = state.engine
            for command, help_text in (engine.chat_commands() if engine else {}).items():
                yield (
                    f"Pane {state.name.upper()}: {command}",
                    f"{engine.family if engine else '?'} chat command: {help_text}",
                    partial(self.run_chat_command, state.name, command),
                )
        for row in self.app.rows:
            if row.available:
                for pane in self.bench.names:
                    yield (
                        f"Load {row.name} into {pane.upper()}",
                        f"{row.family} · {row.key}",
                        partial(self.request_load, pane, row.key, row.name),
                    )

    def _stop_command(self) -> Command:
        stop_help = "Stop the reply of the focused pane, or of every pane"
        return keyed(self, "stop", "Stop generating", stop_help, self.action_stop)

    def _regenerate_command(self) -> Command:
        return keyed(self, "regenerate", "Regenerate", "Another reply to the last message", self.action_regenerate)

    def _clear_command(self) -> Command:
        return keyed(self, "clear", "Clear conversation", "Clear the focused pane, or every pane", self.action_clear)

    # --- actions ------------------------------------------------------------------------------

    def action_stop(self) -> None:
        self.deck.stop()

    def action_regenerate(self) -> None:
        self.deck.regenerate()

    def action_other_reply(self, step: int) -> None:
        self.deck.other_reply(step)

    def action_other_branch(self, step: int) -> None:
        self.branching.step(step)

    def action_edit_message(self, pane: str, message: str) -> None:
        self.branching.ask_to_edit(pane, message)

    @on(MessageView.EditAsked)
    def _edit_asked(self, event: MessageView.EditAsked) -> None:
        pane = next((name for name in self.bench.names if self.pane_widget(name) in event.view.ancestors), None)
        if pane is not None and self.check_action("edit_message", ()):
            self.action_edit_message(pane, event.view.record_id)

    def action_clear(self) -> None:
        self.deck.clear()

    def action_swap(self) -> None:
        self.deck.swap()

    # --- past sessions ------------------------------------------------------------------------

    def action_sessions(self) -> None:
        if self is not self.app.bench_screen:
            self.notify("Past sessions open from the bench.", severity="warning")
            return
        self.post_message(SessionsAsked())

    def ask_to_reopen(self, reopened: Reopened) -> None:
        """Reopen a session here: at once when the panes hold no conversation, else once the person agrees."""
        if any(state.busy or state.loading for state in self.bench.panes):
            self.notify("Stop the replies and wait for the loads before reopening a session.", severity="warning")
            return
        if not any(state.shown for state in self.bench.panes):
            self.call_later(self.reopen, reopened)
            return

        def answered(choice: str | None) -> None:
            if choice == "reopen":
                self.call_later(self.reopen, reopened)

        title = f"Leave this conversation for session {reopened.session.id}?"
        self.app.push_screen(QuestionDialog(title, ON_DISK, [("reopen", "Reopen")]), answered)

    async def reopen(self, reopened: Reopened) -> None:
        """Show a saved session in as many panes as it had and go on with it: its conversations, its models
        loaded again with the settings of their last replies, the next message appended to its file. A pane
        whose model is not here shows its conversation read-only, with the reason."""
        if not all(self.bench.unload(name) for name in self.bench.names):
            return
        await self.deck.set_count(reopened.pane_count)
        if self.bench.transcript is not None:
            self.bench.transcript.close()
            self.bench.transcript = None
        try:
            continue_in(self.bench, reopened)
        except OSError as exc:
            self.bench.transcript = None
            self.notify(f"Not reopened: its transcript cannot be written ({exc})", severity="error")
            return
        notes = list(reopened.notes)
        left_out = [
            name.upper()
            for name, state in reopened.panes.items()
            if name not in self.bench.names and (state.shown or reopened.models.get(name))
        ]
        if left_out:
            notes.append(f"pane(s) {', '.join(left_out)} of that session are not shown here")
        loads: list[tuple[str, str, str]] = []
        for name in self.bench.names:
            self.deck.redraw(name)
            model = reopened.models.get(name)
            spec, why = model_spec(model, self.app.config.servers)
            if spec is None or model is None:
                if model is not None:
                    self.pane_widget(name).set_model(model.model or "?", f"read-only: {why}")
                continue
            loads.append((name, spec, model.model or spec))
        # after the conversation is painted: importing a model's libraries holds the interpreter for seconds
        self.call_after_refresh(self._load_reopened, loads, reopened.params)
        self.notify(f"Reopened {reopened.session.id}", timeout=10)
        if notes:  # damage, panes left out: a warning of its own, still there once the models have loaded
            self.notify(" · ".join(notes), severity="warning", timeout=60)

    def _load_reopened(self, loads: list[tuple[str, str, str]], params: dict[str, dict[str, object]]) -> None:
        for name, spec, label in loads:
            self.load_model(name, spec, label, keep_conversation=True)
            self.bench.restore_settings(name, self.bench.pane(name).generation, params.get(name, {}))

    def action_switch_pane(self) -> None:
        self.deck.switch()

    @on(PaneSwitcher.Picked)
    def _pane_picked(self, event: PaneSwitcher.Picked) -> None:
        self.deck.activate(event.pane)

    def on_descendant_focus(self, event: events.DescendantFocus) -> None:
        self.deck.focus_moved(event.widget)

    @property
    def active_pane(self) -> str:
        """The pane Send active sends to (the one shown when only one fits)."""
        return self.deck.active

    def action_edit_params(self) -> None:
        pane = self.active_pane
        state = self.bench.pane(pane)
        engine, params = state.engine, state.params
        if engine is None or params is None:
            self.notify(f"Pane {pane.upper()} has no model loaded.", severity="warning")
            return

        def applied(values: dict[str, str] | None) -> None:
            if values is not None and self.bench.pane(pane).engine is engine:
                self.bench.pane(pane).params = apply_values(params, values)
                self.deck.show_header(pane)

        title = f"Parameters of pane {pane.upper()}: {state.label} (upstream defaults: {engine.family})"
        dialog = ParamsDialog(
            title,
            editable_values(params),
            presets=preset_values(engine.presets()),
            validate=partial(value_problems, params),
            switches=switch_names(params),
            choices=params.choices(),
        )
        self.app.push_screen(dialog, applied)

    def action_export(self) -> None:
        transcript = self.bench.transcript
        if transcript is None:
            self.notify("Nothing to export yet: this session has no messages.", severity="warning")
            return
        try:
            paths = export_session(transcript.path, self.app.exports_folder)
        except (OSError, TranscriptError) as exc:
            self.notify(f"export failed: {exc}", severity="error")
            return
        self.notify("Exported to " + " and ".join(str(p) for p in paths), timeout=10)

    def action_vote_named(self, verdict: Verdict) -> None:
        """A vote on panes A and B knowing which model is which: stored with ``anonymous: false``, so the
        ranking leaves it out unless asked (``--include-named``)."""
        if not all(self.bench.pane(name).engine for name in self.bench.names[:2]):
            self.notify("Not recorded: both panes need a model.", severity="warning")
            return
        if self.record_vote(verdict, anonymous=False) is not None:
            self.notify(f"Voted (named): {VERDICT_NAMES[verdict]}. Left out of the ranking unless --include-named.")

    def record_vote(self, verdict: Verdict, *, anonymous: bool) -> Battle | None:
        """Store a vote on the conversations of panes A and B; the battle, or None (and why, on screen)."""
        first, second = (self.bench.pane(name) for name in self.bench.names[:2])
        names = maker_names(self.app.config.maker_names)
        try:
            battle = battle_of_round((first, second), verdict, anonymous=anonymous, maker_names=names)
            self.store_battle(battle)
        except ArenaError as exc:
            self.notify(f"Not recorded: {exc}.", severity="warning")
            return None
        except (ArenaDataError, sqlite3.Error, OSError) as exc:  # nothing changes: the vote can be cast again
            self.notify(f"The vote could not be stored: {exc}", severity="error", timeout=15)
            return None
        return battle

    def store_battle(self, battle: Battle) -> None:
        """Write one vote to the vote database; it is on disk when this returns."""
        with VoteStore.open() as store:
            store.record(battle)

    def action_find_model(self) -> None:
        self.query_one(ModelList).display = True
        self.query_one("#model-filter").focus()
        self.call_after_refresh(self.deck.fit)  # less room for the panes

    def action_toggle_models(self) -> None:
        models = self.query_one(ModelList)
        models.display = not models.display
        self.call_after_refresh(self.deck.fit)  # the panes' room changed

    def run_chat_command(self, pane: str, command: str) -> None:
        """A model's own chat command (RWKV's ``+reset``, ``+gen TEXT``…): sent to ``pane`` at once when it
        takes nothing more, else put in the composer to be completed and sent to that pane."""
        head, _, placeholder = command.partition(" ")
        if placeholder:  # "+gen TEXT"
            start = head + " "
        elif command.endswith("=X"):  # "-temp=X", written inside a message
            start = command.removesuffix("X")
        else:
            self.deck.send(command, [pane])
            return
        self.deck.activate(pane)
        composer = self.query_one(Composer)
        composer.text = start + composer.text
        composer.move_cursor(composer.document.end)
        composer.focus()
        self.notify(f"Complete the command; Ctrl+T sends it to pane {pane.upper()}.")

    # --- the memory meter ---------------------------------------------------------------------

    def show_memory(self, event: workers.MemoryRead) -> None:
        if self._ready and not self._screen_gone():
            for meter in self.query(GpuMeter):  # none once the screen's widgets are removed as the app exits
                meter.show(self.memory_shown(event.reading))

    def memory_shown(self, reading: MemoryReading) -> MemoryReading:
        """What of a memory reading the meter shows: all of it."""
        return reading
