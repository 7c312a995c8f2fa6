"""The leaderboard: Bradley–Terry ratings of the stored arena votes with their 95% intervals drawn as bars,
and the win-rate matrix as a heat map. The numbers are ``zhbench leaderboard``'s (``--json`` has them all).

Computed in a thread worker (numpy and scipy load there); the keys switch which votes count and whether
style is held equal, as the command's flags do.
"""

from __future__ import annotations

from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Header, Static

from zhbench.workbench import workers


class LeaderboardScreen(Screen[None]):
    """The ranking of every model the arena has seen."""

    SUB_TITLE = "leaderboard"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "app.pop_screen", "Back", id="leaderboard-back"),
        Binding("n", "switch('include_named')", "Named votes", id="leaderboard-named"),
        Binding("l", "switch('include_leaked')", "Leaked battles", id="leaderboard-leaked"),
        Binding("s", "switch('style_control')", "Style control", id="leaderboard-style"),
        Binding("r", "recompute", "Refresh", id="leaderboard-refresh"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.include_named = False
        self.include_leaked = False
        self.style_control = False

    def compose(self) -> ComposeResult:
        yield Header(show_clock=False, icon="⚖")
        with VerticalScroll():
            yield Static("", id="board-options", markup=False)
            yield Static("ranking the votes…", id="board-table", markup=False)
            yield Static("", id="board-matrix", markup=False)
        yield Footer()

    def on_mount(self) -> None:
        self.action_recompute()

    def action_switch(self, option: str) -> None:
        setattr(self, option, not getattr(self, option))
        self.action_recompute()

    def action_recompute(self) -> None:
        switches = {
            "votes cast knowing the models (n)": self.include_named,
            "battles a reply leaked (l)": self.include_leaked,
            "style held equal (s)": self.style_control,
        }
        self.query_one("#board-options", Static).update(
            " · ".join(f"{'☑' if on_ else '☐'} {what}" for what, on_ in switches.items())
        )
        self.run_worker(
            lambda: workers.compute_leaderboard(
                self.post_message,
                include_named=self.include_named,
                include_leaked=self.include_leaked,
                style_control=self.style_control,
            ),
            thread=True,
            group="leaderboard",
            exclusive=True,
            exit_on_error=False,
        )

    @on(workers.LeaderboardComputed)
    def _computed(self, event: workers.LeaderboardComputed) -> None:
        self.query_one("#board-table", Static).update(event.table)
        matrix = "win rates, row against column (ties as half):\n" + event.matrix if event.matrix else ""
        self.query_one("#board-matrix", Static).update(matrix)

    @on(workers.LeaderboardFailed)
    def _failed(self, event: workers.LeaderboardFailed) -> None:
        self.query_one("#board-table", Static).update(f"The votes could not be ranked: {event.reason}")
