"""An earlier message to edit: its text in a composer, sent again in its place (a branch from there)."""

from __future__ import annotations

from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Static

from zhbench.plain.safe_text import visible_text
from zhbench.widgets.composer import Composer


class EditDialog(ModalScreen[str | None]):
    """``text`` to edit, under ``title`` and ``explanation``; dismissed with the edited text when it is sent
    (Enter, as in the composer), or None when cancelled (Esc)."""

    DEFAULT_CSS = """
    EditDialog { align: center middle; }
    EditDialog > Vertical { width: 80; height: auto; border: thick $accent; background: $surface; padding: 1 2; }
    EditDialog .title { text-style: bold; margin-bottom: 1; }
    EditDialog Composer { margin-top: 1; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel", id="edit-cancel")]

    def __init__(self, title: str, explanation: str, text: str) -> None:
        super().__init__()
        self.title_text = title
        self.explanation = explanation
        self.text = text

    def compose(self) -> ComposeResult:
        # the message is shown as written, never read as markup
        with Vertical():
            yield Static(visible_text(self.title_text), classes="title", markup=False)
            yield Static(visible_text(self.explanation), markup=False)
            yield Composer(id="edit-text")

    def on_mount(self) -> None:
        composer = self.query_one(Composer)
        composer.border_subtitle = "Enter sends the edit · Shift+Enter / Ctrl+J: new line · Esc cancels"
        composer.empty_note = "Not sent: the edit is empty (type the new message, or Esc to cancel)."
        composer.text = self.text
        composer.move_cursor(composer.document.end)
        composer.focus()

    @on(Composer.Submitted)
    def _sent(self, event: Composer.Submitted) -> None:
        event.stop()
        self.dismiss(event.text)

    def action_cancel(self) -> None:
        self.dismiss(None)
