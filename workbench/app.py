"""The zhbench app: the bench screen, its themes and keys, and the workers every screen shares.

The app finds the models on this machine and reads memory, each in a thread worker, and hands what
they report to the bench screen (``workbench/screens/bench.py``), which does the rest.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from textual import on
from textual.app import App
from textual.screen import Screen
from textual.theme import Theme

from themes import STYLESHEET, THEME_VARIABLE_DEFAULTS, THEMES
from workbench import workers
from workbench.screens.bench import BenchScreen
from workbench.session.bench import Bench
from workbench.session.config import (
    Config,
    demo_models_dir,
    exports_dir,
    load_config,
    remember_theme,
    transcripts_dir,
)
from workbench.session.memory import NvmlReader, read_memory
from workbench.session.model_rows import ModelRow


class ZhbenchApp(App[None]):
    """Chinese chat models side by side, answering the same message at once."""

    TITLE = "zhbench"
    CSS_PATH = STYLESHEET
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
    ) -> None:
        super().__init__()
        self.config = config or load_config()
        self.exports_folder = exports_folder or exports_dir()
        self.demo_folder = demo_folder or demo_models_dir()
        self.device = device
        nvml = NvmlReader()
        self.memory_reader: workers.MemoryReader = memory_reader or (lambda panes: read_memory(nvml, panes))
        #: every model on offer, once discovery has reported
        self.rows: list[ModelRow] = []
        self.discovered: workers.ModelsDiscovered | None = None
        self.bench = Bench(
            transcripts_folder or transcripts_dir(),
            param_overrides=self.config.params,
            on_problem=lambda problem: self.notify(problem, severity="error", timeout=10),
        )
        self.bench_screen = BenchScreen(
            self.bench, preload={k: v for k, v in (preload or {}).items() if v}, offer_demos=offer_demos
        )

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
            self.theme = "zhbench-dark"
        self.theme_changed_signal.subscribe(self, self._theme_changed)
        if self.config.keymap:
            self.set_keymap(self.config.keymap)
        for problem in self.config.problems:
            self.notify(problem, title="config", severity="warning", timeout=10)
        self.run_worker(
            lambda: workers.poll_memory(self.post_message, self.memory_reader, self.bench.held_memory),
            thread=True,
            group="memory",
            exit_on_error=False,
        )
        self.run_worker(
            lambda: workers.discover_models(self.post_message, self.config.model_dirs),
            thread=True,
            group="discover",
            exit_on_error=False,
        )

    def exit(self, *args: Any, **kwargs: Any) -> None:
        """Stop every reply first, so no generating thread outlives the app by more than a token."""
        self.bench.stop(self.bench.names)
        super().exit(*args, **kwargs)

    def _theme_changed(self, theme: Theme) -> None:
        problem = remember_theme(self.config, theme.name)
        if problem:
            self.notify(problem, severity="warning")

    @on(workers.ModelsDiscovered)
    def _models_discovered(self, event: workers.ModelsDiscovered) -> None:
        self.rows, self.discovered = event.rows, event
        for problem in event.problems:
            self.notify(problem, title="model families", severity="warning", timeout=10)
        self.bench_screen.show_models(event)

    @on(workers.MemoryRead)
    def _memory_read(self, event: workers.MemoryRead) -> None:
        self.bench_screen.show_memory(event)
