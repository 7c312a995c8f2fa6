"""A question with a button per answer: asked before a conversation is set aside or a download starts."""

from __future__ import annotations

from collections.abc import Sequence

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Static

from zhbench.plain.safe_text import visible_text

#: one answer: what the dialog is dismissed with, and its button's label
Choice = tuple[str, str]


class QuestionDialog(ModalScreen[str | None]):
    """``question`` with a button per choice, the first one focused, then Cancel; dismissed with the chosen
    choice's name, or None when cancelled (the button, or Esc)."""

    DEFAULT_CSS = """
    QuestionDialog { align: center middle; }
    QuestionDialog > Vertical { width: 72; height: auto; border: thick $warning; background: $surface; padding: 1 2; }
    QuestionDialog .title { text-style: bold; margin-bottom: 1; }
    QuestionDialog Horizontal { height: auto; margin-top: 1; }
    QuestionDialog Button { margin-right: 2; }
    """

    BINDINGS = [Binding("escape", "cancel", "Cancel", id="question-cancel")]  # noqa: RUF012

    def __init__(self, title: str, question: str, choices: Sequence[Choice]) -> None:
        super().__init__()
        self.title_text = title
        self.question = question
        self.choices = choices

    def compose(self) -> ComposeResult:
        # a model's name or path is part of the question: shown as written, never read as markup
        with Vertical():
            yield Static(visible_text(self.title_text), classes="title", markup=False)
            yield Static(visible_text(self.question), markup=False)
            with Horizontal():
                for index, (name, label) in enumerate(self.choices):
                    yield Button(label, name=name, variant="primary" if index == 0 else "default")
                yield Button("Cancel", id="question-cancel")

    def on_mount(self) -> None:
        self.query(Button).first().focus()

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.name)

    def action_cancel(self) -> None:
        self.dismiss(None)
