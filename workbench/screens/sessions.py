"""Past sessions: the list to reopen one from, and an arena round read back.

``SessionsScreen`` lists the saved sessions newest first (when, the models, the first message, the
turns, whether it was an arena round) and filters them as the person types, through the search index
(``workbench/session/search.py``, read in a thread worker); Enter hands the chosen session's file back to
whoever opened the list. ``PastArenaScreen`` shows an arena round as it was, read-only: the arena's
votes are cast once, on a round played blind.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Input, Static

from zhbench.plain.safe_text import visible_text
from zhbench.widgets.composer import Composer
from zhbench.workbench import workers
from zhbench.workbench.screens.bench import BenchScreen
from zhbench.workbench.session.bench import Bench
from zhbench.workbench.session.reopen import Reopened
from zhbench.workbench.session.search import SessionRow

#: the columns of the list, and how many cells of a first message it shows
COLUMNS = ("Started", "Models", "First message", "Turns", "")
FIRST_MESSAGE_CELLS = 48
#: the most rows the list holds: the newest, the filter finds the rest
MAX_ROWS = 500


def row_cells(row: SessionRow) -> tuple[Text, ...]:
    """A session's cells, each its literal text (a model's name or a message may hold markup or escapes)."""
    if row.error is not None:
        return Text(row.id), Text(""), Text(visible_text(f"unreadable: {row.error}")), Text(""), Text("")
    started = row.started[:16].replace("T", " ")
    models = " · ".join(f"{pane.upper()}: {model or '-'}" for pane, model in row.models.items())
    first = row.first_message.split("\n", 1)[0]
    first = first[:FIRST_MESSAGE_CELLS] + ("…" if len(first) > FIRST_MESSAGE_CELLS else "")
    marks = ["arena"] * row.arena + ["damaged"] * bool(row.damaged_lines)
    return tuple(Text(visible_text(cell)) for cell in (started, models, first, str(row.turns), " ".join(marks)))


class SessionsScreen(Screen[Path | None]):
    """The saved sessions, newest first, filtered by the text of their messages; Enter reopens one."""

    SUB_TITLE = "sessions"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "dismiss_none", "Back", id="sessions-back"),
        Binding("down", "to_rows", "To the list", id="sessions-to-rows", show=False),
    ]

    def __init__(self, folder: Path) -> None:
        super().__init__()
        self.folder = folder
        self.rows: list[SessionRow] = []

    def compose(self) -> ComposeResult:
        yield Header(show_clock=False, icon="⚖")
        yield Input(placeholder="Filter: text in any message or reply", id="sessions-filter")
        yield Static("reading the sessions…", id="sessions-note", markup=False)
        yield DataTable(id="sessions-table", cursor_type="row", zebra_stripes=True)
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(DataTable).add_columns(*COLUMNS)
        self.query_one(Input).focus()
        self._search("")

    @on(Input.Changed, "#sessions-filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        self._search(event.value)

    def _search(self, query: str) -> None:
        self.run_worker(
            lambda: workers.find_sessions(self.post_message, self.folder, query),
            thread=True,
            group="sessions",
            exclusive=True,
            exit_on_error=False,
        )

    @on(workers.SessionsFound)
    def _found(self, event: workers.SessionsFound) -> None:
        if event.query != self.query_one(Input).value:
            return  # the filter has changed since: that search's answer is on its way
        self.rows = event.rows[::-1][:MAX_ROWS]  # newest first
        table = self.query_one(DataTable)
        table.clear()
        for number, row in enumerate(self.rows):
            table.add_row(*row_cells(row), key=str(number))
        what = f"{len(event.rows)} session(s)" + (f" containing {event.query!r}" if event.query else "")
        if len(event.rows) > MAX_ROWS:
            what += f", the newest {MAX_ROWS} listed (type to find the others)"
        keys = "Enter reopens the one selected · ↓ to the list · Esc back"
        self.query_one("#sessions-note", Static).update(" · ".join([what, *event.notes, keys]))

    def action_to_rows(self) -> None:
        self.query_one(DataTable).focus()

    def action_dismiss_none(self) -> None:
        self.dismiss(None)

    @on(Input.Submitted, "#sessions-filter")
    def _submitted(self) -> None:
        self._choose(self.query_one(DataTable).cursor_row)

    @on(DataTable.RowSelected)
    def _selected(self, event: DataTable.RowSelected) -> None:
        self._choose(event.cursor_row)

    def _choose(self, index: int) -> None:
        if not 0 <= index < len(self.rows):
            return
        row = self.rows[index]
        if row.error is not None:
            self.notify(visible_text(f"Not reopened: {row.error}"), severity="error")
            return
        self.dismiss(Path(row.path))


class PastArenaScreen(BenchScreen):
    """An arena round as it was, with the names its vote revealed; nothing can be sent, changed or voted."""

    SUB_TITLE = "arena round · read-only"
    SHOWS_MODEL_LIST = False
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "app.pop_screen", "Back", id="past-arena-back")]
    #: none of the bench's actions: a past round is only read (Back is the app's own)
    ALLOWED_ACTIONS = frozenset[str]()
    COMMANDS: ClassVar = Screen.COMMANDS

    def __init__(self, reopened: Reopened) -> None:
        panes = [name for name in reopened.panes if name in "ab"] or ["a", "b"]
        super().__init__(Bench(reopened.session.path.parent, pane_count=len(panes)), preload={}, offer_demos=False)
        self.reopened = reopened
        for state in self.bench.panes:
            saved = reopened.panes.get(state.name)
            if saved is not None:
                state.shown = list(saved.shown)

    def show_models(self, event: workers.ModelsDiscovered) -> None:
        """A past round loads nothing: no model list here."""

    def _set_up(self) -> None:
        super()._set_up()
        self.query_one(Composer).disabled = True
        for name in self.bench.names:
            self.deck.redraw(name)
            model = self.reopened.models.get(name)
            when = self.reopened.session.header.started[:16].replace("T", " ")
            self.pane_widget(name).set_model(model.model or "?" if model else "?", f"arena round of {when} · read-only")
        for note in self.reopened.notes:
            self.notify(note, severity="warning", timeout=10)
