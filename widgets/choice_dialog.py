"""A question with a list of answers, one line each: for more answers than a row of buttons holds."""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text
from textual import events, on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, OptionList, Static
from textual.widgets.option_list import Option

from zhbench.plain.safe_text import visible_text
from zhbench.widgets.question import Choice, QuestionDialog


class ChoiceDialog(QuestionDialog):
    """``question`` over a list of ``choices``, ``preselected`` (else the first) highlighted and focused, then
    Cancel; dismissed with the chosen choice's name (Enter or a click on its line), or None when cancelled."""

    DEFAULT_CSS = """
    ChoiceDialog OptionList { height: auto; max-height: 12; margin-top: 1; }
    """

    def __init__(self, title: str, question: str, choices: Sequence[Choice], preselected: str | None = None) -> None:
        super().__init__(title, question, choices)
        self.preselected = preselected

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(visible_text(self.title_text), classes="title", markup=False)
            yield Static(visible_text(self.question), markup=False)
            yield OptionList(*(Option(Text(visible_text(label)), id=name) for name, label in self.choices))
            with Horizontal():
                yield Button("Cancel", id="question-cancel")

    @on(events.Mount)
    def _focus_the_list(self, event: events.Mount) -> None:
        event.prevent_default()  # the question's on_mount would focus its first button: here, the list has it
        options = self.query_one(OptionList)
        names = [name for name, _ in self.choices]
        options.highlighted = names.index(self.preselected) if self.preselected in names else 0
        options.focus()

    @on(OptionList.OptionSelected)
    def _chosen(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)
