"""The row of pane names a bench shows when its panes do not fit side by side: only the active pane is on
screen, the row marks which, and a click on a name (or the bench's switch key) shows another."""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text
from textual import events
from textual.message import Message
from textual.widgets import Static

#: the fewest columns a pane is drawn in: narrower, the panes no longer sit side by side
PANE_MIN_COLUMNS = 30
#: the cells of one pane's name in the row (" A ", with a space either side)
NAME_CELLS = 5


def panes_fit(columns: int, count: int) -> bool:
    """Whether ``count`` panes fit side by side in ``columns``."""
    return columns >= count * PANE_MIN_COLUMNS


class PaneSwitcher(Static):
    """``  A  [B]  C  D   Ctrl+O: next pane``: the pane shown, among the others."""

    DEFAULT_CSS = """
    PaneSwitcher { display: none; height: 1; padding: 0 1; background: $panel; color: $text-muted; }
    """

    class Picked(Message):
        """A pane's name was clicked."""

        def __init__(self, pane: str) -> None:
            super().__init__()
            self.pane = pane

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__("", id=id, markup=False)
        self.names: list[str] = []

    def show(self, names: Sequence[str], active: str, switch_key: str) -> None:
        """Mark ``active`` among ``names``; ``switch_key`` is the key that shows the next pane."""
        self.names = list(names)
        text = Text()
        for name in self.names:
            label = f"[{name.upper()}]" if name == active else f" {name.upper()} "
            text.append(label.center(NAME_CELLS), style="bold reverse" if name == active else "")
        text.append(f"  {switch_key}: next pane · all side by side when wider")
        self.update(text)

    def on_click(self, event: events.Click) -> None:
        index = (event.x - self.styles.padding.left) // NAME_CELLS
        if 0 <= index < len(self.names):
            self.post_message(self.Picked(self.names[index]))
