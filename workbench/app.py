"""The zhbench app: the bench screen, its themes and keys, and the workers every screen shares.

The app finds the models on this machine and reads memory, each in a thread worker, and hands what
they report to the bench screen (``workbench/screens/bench.py``), which does the rest.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from textual import events, on
from textual.app import App
from textual.binding import BindingType
from textual.notifications import SeverityLevel
from textual.screen import Screen
from textual.theme import Theme

from zhbench.engines.local.chat_render import set_render_limits
from zhbench.plain.model_rows import ModelRow
from zhbench.plain.safe_text import visible_text
from zhbench.themes import STYLESHEET, THEME_VARIABLE_DEFAULTS, THEMES
from zhbench.workbench import workers
from zhbench.workbench.paste import use_whole_paste_parser
from zhbench.workbench.screens.bench import (
    QUIT_BINDING,
    ArenaAsked,
    BenchScreen,
    LeaderboardAsked,
    SessionsAsked,
)
from zhbench.workbench.screens.model_downloads import RescanAsked
from zhbench.workbench.session.bench import Bench
from zhbench.workbench.session.config import (
    Config,
    demo_models_dir,
    exports_dir,
    load_config,
    remember_theme,
    transcripts_dir,
)
from zhbench.workbench.session.memory import NvmlReader, read_memory
from zhbench.workbench.session.panes import PANE_NAMES
from zhbench.workbench.session.reopen import reopen
from zhbench.workbench.session.transcripts import TranscriptError, read_session

if TYPE_CHECKING:  # the screens the bench opens load when first opened: the first screen comes sooner
    from zhbench.workbench.session.arena.rounds import Contender


class ZhbenchApp(App[None]):
    """Chinese chat models side by side, answering the same message at once."""

    TITLE = "zhbench"
    CSS_PATH = STYLESHEET
    #: Textual's Ctrl+Q, with an id for the keymap and shown in the footer
    BINDINGS: ClassVar[list[BindingType]] = [QUIT_BINDING]

    def __init__(
        self,
        *,
        preload: dict[str, str] | None = None,
        config: Config | None = None,
        transcripts_folder: Path | None = None,
        exports_folder: Path | None = None,
        demo_folder: Path | None = None,
        offer_demos: bool = True,
        memory_reader: workers.MemoryReader | None = None,
        device: str | None = None,
        arena_pool: list[Contender] | None = None,
        arena_own_decoding: bool = False,
        review: Path | None = None,
    ) -> None:
        super().__init__()
        use_whole_paste_parser()
        self.config = config or load_config()
        set_render_limits(self.config.render_limits)
        self.exports_folder = exports_folder or exports_dir()
        self.demo_folder = demo_folder or demo_models_dir()
        self.device = device
        nvml = NvmlReader()
        self.memory_reader: workers.MemoryReader = memory_reader or (lambda panes: read_memory(nvml, panes))
        #: every model on offer, once discovery has reported
        self.rows: list[ModelRow] = []
        self.discovered: workers.ModelsDiscovered | None = None
        self.transcripts_folder = transcripts_folder or transcripts_dir()
        preload = {k: v for k, v in (preload or {}).items() if v}
        self.bench = Bench(
            self.transcripts_folder,
            # the config's count, or more: one pane for each model asked for (``--pane``)
            pane_count=max([self.config.panes, *(PANE_NAMES.index(name) + 1 for name in preload)]),
            param_overrides=self.config.params,
            on_problem=self._show_problem,
        )
        self.bench_screen = BenchScreen(self.bench, preload=preload, offer_demos=offer_demos)
        #: ``zhbench arena``: the arena opens over the bench with this pool (empty: every model found, once found)
        self.arena_pool = arena_pool
        #: ``zhbench arena --own-decoding``: each model at its upstream decoding, not the arena's preset
        self.arena_own_decoding = arena_own_decoding
        #: ``zhbench arena --batch DIR``: the blind review of that batch run opens over the bench
        self.review = review

    async def on_event(self, event: events.Event) -> None:
        """A paste reaches whichever widget has the focus (the composer, a filter, a dialog's field) with
        its control characters as visible escapes (``\\x1b``): drawn raw, a pasted OSC sequence retitled the
        terminal. What shows is what is sent."""
        if isinstance(event, events.Paste) and not event.is_forwarded:
            event = events.Paste(visible_text(event.text))
        await super().on_event(event)

    def notify(
        self,
        message: str,
        *,
        title: str = "",
        severity: SeverityLevel = "information",
        timeout: float | None = None,
        markup: bool = False,
    ) -> None:
        """Textual's notification, plain text unless asked: a message carries names, paths, config values and
        servers' errors, and ``[/]`` or ``[@click=app.quit]`` in one of them must show as written, and an
        escape sequence in one as its visible escape (drawn raw, an OSC sequence would retitle the terminal)."""
        if not markup:
            message, title = visible_text(message), visible_text(title)
        super().notify(message, title=title, severity=severity, timeout=timeout, markup=markup)

    def _show_problem(self, problem: str) -> None:
        """What a session could not do (a transcript not written…), as an error notification."""
        self.notify(problem, severity="error", timeout=10)

    def get_default_screen(self) -> Screen[None]:
        return self.bench_screen

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
            self.theme = self.config.theme = "zhbench-dark"  # in effect; the file keeps its value until a switch
        self.theme_changed_signal.subscribe(self, self._theme_changed)
        if self.config.keymap:
            self.set_keymap(self.config.keymap)
        for problem in self.config.problems:
            self.notify(problem, title="config", severity="warning", timeout=10)
        self.run_worker(
            lambda: workers.poll_memory(self.post_message, self.memory_reader, self._held_memory),
            thread=True,
            group="memory",
            exit_on_error=False,
        )
        self.rescan_models()
        if self.arena_pool:
            self.open_arena(self.arena_pool)
        if self.review is not None:
            from zhbench.workbench.screens.review import ReviewScreen

            self.push_screen(ReviewScreen(self.review))

    def exit(self, *args: Any, **kwargs: Any) -> None:
        """Stop every reply first, so no generating thread outlives the app by more than a token."""
        for screen in self.screen_stack:
            if isinstance(screen, BenchScreen):
                screen.bench.stop(screen.bench.names)
        super().exit(*args, **kwargs)

    def open_arena(self, pool: list[Contender] | None = None) -> None:
        """Blind battles over ``pool``, by default every model on offer that is on this machine (the demos
        only when there is nothing else). Its panes are its own: the bench's stay as they are."""
        from zhbench.workbench.screens.arena import ArenaScreen
        from zhbench.workbench.session.arena.rounds import ARENA_DECODING, Contender

        if pool is None:
            available = [row for row in self.rows if row.available and row.problem is None]
            real = [row for row in available if row.source != "demo"]
            pool = [Contender(row.key) for row in (real if len(real) >= 2 else available)]
        if len(pool) < 2:
            found = "still looking for models" if self.discovered is None else f"{len(pool)} model(s) on this machine"
            self.notify(f"The arena needs two models to compare ({found}).", severity="warning")
            return
        # Both sides answer with the arena's own preset (or, asked, each at its upstream defaults), never the
        # config's [params.FAMILY]: the same footing for both, and no problem to report that would name a family.
        decoding = None if self.arena_own_decoding else ARENA_DECODING
        arena_bench = Bench(self.transcripts_folder, decoding=decoding, on_problem=self._show_problem, arena=True)
        self.push_screen(ArenaScreen(arena_bench, pool))

    def rescan_models(self) -> None:
        """Find the models on this machine and the servers again (at start, after a download, on request)."""
        self.run_worker(
            lambda: workers.discover_models(
                self.post_message, self.config.model_dirs, self.config.servers, device=self.device
            ),
            thread=True,
            group="discover",
            exclusive=True,
            exit_on_error=False,
        )

    def open_sessions(self) -> None:
        """The past sessions; the one chosen reopens in the bench (an arena round read-only, over it)."""
        from zhbench.workbench.screens.sessions import SessionsScreen

        self.push_screen(SessionsScreen(self.transcripts_folder), self._session_chosen)

    def _session_chosen(self, path: Path | None) -> None:
        if path is None:
            return
        try:
            reopened = reopen(read_session(path))
        except TranscriptError as exc:
            self.notify(f"Not reopened: {exc}", severity="error")
            return
        if reopened.arena:
            from zhbench.workbench.screens.sessions import PastArenaScreen

            self.push_screen(PastArenaScreen(reopened))
        else:
            self.bench_screen.ask_to_reopen(reopened)

    def open_leaderboard(self) -> None:
        from zhbench.workbench.screens.leaderboard import LeaderboardScreen

        self.push_screen(LeaderboardScreen())

    def _held_memory(self) -> tuple[tuple[str, str, int | None], ...]:
        """What the panes of the screen on top hold (read by the memory worker's thread)."""
        screen = self.screen_stack[-1] if self.screen_stack else None
        bench = screen.bench if isinstance(screen, BenchScreen) else self.bench
        return bench.held_memory()

    def _theme_changed(self, theme: Theme) -> None:
        """Remember a theme the person switched to. The signal also announces, a moment after mount, the
        theme set from the config: that one is no change, and the config file is left as it is."""
        if theme.name == self.config.theme:
            return
        problem = remember_theme(self.config, theme.name)
        if problem:
            self.notify(problem, severity="warning")

    @on(RescanAsked)
    def _rescan_asked(self) -> None:
        self.rescan_models()

    @on(ArenaAsked)
    def _arena_asked(self) -> None:
        self.open_arena()

    @on(SessionsAsked)
    def _sessions_asked(self) -> None:
        self.open_sessions()

    @on(LeaderboardAsked)
    def _leaderboard_asked(self) -> None:
        self.open_leaderboard()

    @on(workers.ModelsDiscovered)
    def _models_discovered(self, event: workers.ModelsDiscovered) -> None:
        self.rows, self.discovered = event.rows, event
        if self.arena_pool == []:  # ``zhbench arena`` without --pool: every model found
            self.arena_pool = None
            self.open_arena()
        for problem in event.problems:
            self.notify(problem, title="models", severity="warning", timeout=10)
        self.bench_screen.show_models(event)

    @on(workers.MemoryRead)
    def _memory_read(self, event: workers.MemoryRead) -> None:
        if self.screen_stack and isinstance(self.screen, BenchScreen):  # no screen left while the app exits
            self.screen.show_memory(event)
