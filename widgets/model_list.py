"""The model list: the catalog, every model found locally and on the config's servers, filterable, loadable
into pane A or B; a model not on this machine can be downloaded from it (``d``), and so can a hub id typed
into the filter that names none of the rows."""

from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text
from textual import events, on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widgets import Button, DataTable, Input, Static

from zhbench.plain.byte_sizes import WIDTH as SIZE_WIDTH
from zhbench.plain.byte_sizes import format_bytes
from zhbench.plain.model_rows import FIT_MARKS, ModelRow, download_offer
from zhbench.plain.safe_text import visible_text

FIT_STYLES = {"tight": "yellow", "does not fit": "red"}


def _searchable(row: ModelRow) -> str:
    return f"{row.name} {row.family} {row.key} {row.source}".lower()


class ModelTable(DataTable[Text]):
    BINDINGS = [  # noqa: RUF012 (Textual's own declaration style)
        # short labels, as on the buttons: with the bench's first keys they fit an 80-column footer
        Binding("a", "load('a')", "→ A", id="load-a", tooltip="Load the model into pane A"),
        Binding("b", "load('b')", "→ B", id="load-b", tooltip="Load the model into pane B"),
        Binding("enter", "load('active')", "Load in active pane", id="load-active", show=False),
        Binding("d", "download", "Download", id="download-model"),
    ]

    def action_load(self, pane: str) -> None:
        if isinstance(self.parent, ModelList):
            self.parent.request_load(pane)

    def action_download(self) -> None:
        if isinstance(self.parent, ModelList) and (row := self.parent.highlighted()) is not None:
            self.parent.post_message(ModelList.DownloadRequested(row))

    def on_key(self, event: events.Key) -> None:
        """A character typed in the list goes on the end of the filter, unless it is a bound key (the list's
        ``a``, ``b`` and ``d``, or what the keymap put in their place)."""
        if event.character and event.is_printable and event.key not in self.screen.active_bindings:
            event.stop()
            event.prevent_default()
            if isinstance(self.parent, ModelList):
                self.parent.type_in_filter(event.character)


class ModelList(Vertical):
    """Rows of models; ``LoadRequested`` when the person asks to load the highlighted one."""

    DEFAULT_CSS = """
    ModelList { width: 57; min-width: 30; border: round $foreground 30%; }
    ModelList:focus-within { border: round $accent; }
    ModelList > Input { margin: 0 0 1 0; }
    ModelList > DataTable { height: 1fr; scrollbar-size-horizontal: 1; }
    ModelList > Horizontal { height: 1; }
    ModelList > #model-status { height: auto; color: $text-muted; display: none; }
    ModelList > #model-status.shown { display: block; }
    ModelList Button { width: 1fr; min-width: 8; height: 1; border: none; margin: 0 1 0 0; }
    """

    BINDINGS = [  # noqa: RUF012 (Textual's own declaration style)
        # the table's own Down moves its cursor: this one takes the filter (or a button) to the rows
        Binding("down", "focus_rows", "To the rows", id="filter-to-rows", show=False),
    ]

    @dataclass
    class LoadRequested(Message):
        row: ModelRow
        pane: str  # "a", "b" or "active"

    @dataclass
    class DownloadRequested(Message):
        row: ModelRow

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.border_title = "Models"
        self.rows: list[ModelRow] = []
        self.shown: list[ModelRow] = []

    def compose(self) -> ComposeResult:
        yield Input(placeholder="filter models…", id="model-filter", compact=True)
        table = ModelTable(cursor_type="row", zebra_stripes=True, id="model-table")
        table.add_column("model", width=20)
        table.add_column("family", width=12)
        table.add_column("disk", width=SIZE_WIDTH)
        table.add_column("mem", width=SIZE_WIDTH + 1)  # and the fit mark
        yield table
        yield Static("", id="model-status", markup=False)
        with Horizontal():
            yield Button("→ A", id="load-into-a", compact=True)
            yield Button("→ B", id="load-into-b", compact=True)

    @property
    def table(self) -> ModelTable:
        return self.query_one(ModelTable)

    def set_rows(self, rows: list[ModelRow]) -> None:
        self.rows = rows
        self._refill(self.query_one(Input).value)

    @on(Input.Changed, "#model-filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        self._refill(event.value)

    @on(Input.Submitted, "#model-filter")
    def action_focus_rows(self) -> None:
        """From the filter to the rows: Enter, or Down."""
        self.table.focus()

    def type_in_filter(self, text: str) -> None:
        """Add ``text`` to the end of the filter and move the focus there."""
        field = self.query_one("#model-filter", Input)
        # Focused at once, so that the next key typed goes to the filter too; the text goes in after the
        # filter has taken the focus, which selects all of it (typing would replace a selection).
        self.screen.set_focus(field)

        def append() -> None:
            field.cursor_position = len(field.value)
            field.insert_text_at_cursor(text)

        field.call_later(append)

    def _refill(self, query: str) -> None:
        words = query.lower().split()
        self.shown = [row for row in self.rows if all(w in _searchable(row) for w in words)]
        if not self.shown and (offer := download_offer(query)) is not None:
            self.shown = [offer]
        table = self.table
        table.clear()
        for row in self.shown:
            style = "" if row.available else "dim"
            label = visible_text(row.name) + (" (demo)" if row.source == "demo" else "")
            if row.problem is not None:
                label += f" ({visible_text(row.problem)})"
                style = "dim"
            if row.source == "hub":
                label = "download " + label
            table.add_row(
                Text(label, style=style),
                Text(" ".join(part for part in (row.family, row.quantization) if part), style=style),
                Text(format_bytes(row.size_bytes, unknown="—"), style=style, justify="right"),
                Text(
                    format_bytes(row.estimated_bytes, unknown="—") + FIT_MARKS.get(row.fit or "", " "),
                    style=f"{style} {FIT_STYLES.get(row.fit or '', '')}".strip(),
                    justify="right",
                ),
            )

    def set_status(self, text: str | None) -> None:
        """A line under the list (a download's progress); None hides it."""
        status = self.query_one("#model-status", Static)
        status.update(text or "")
        status.set_class(bool(text), "shown")

    def highlighted(self) -> ModelRow | None:
        index = self.table.cursor_row
        return self.shown[index] if 0 <= index < len(self.shown) else None

    def request_load(self, pane: str) -> None:
        """Ask to load the highlighted row into ``pane``; on the row offering a typed hub id, to download it."""
        row = self.highlighted()
        if row is not None and row.source == "hub":
            self.post_message(self.DownloadRequested(row))
        elif row is not None:
            self.post_message(self.LoadRequested(row, pane))

    @on(Button.Pressed, "#load-into-a")
    def _load_a(self) -> None:
        self.request_load("a")

    @on(Button.Pressed, "#load-into-b")
    def _load_b(self) -> None:
        self.request_load("b")
