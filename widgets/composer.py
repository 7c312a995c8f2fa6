"""The composer under the panes: Enter sends to both panes, another key to the active pane only."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from textual.binding import Binding
from textual.dom import DOMNode
from textual.message import Message
from textual.widgets import TextArea


class Composer(TextArea):
    """A multi-line message box. Shift+Enter, or Ctrl+J where the terminal swallows Shift+Enter, adds a line."""

    DEFAULT_CSS = """
    Composer { height: auto; min-height: 3; max-height: 10; border: tall $foreground 30%; }
    Composer:focus { border: tall $accent; }
    """

    BINDINGS = [  # noqa: RUF012 (Textual's own declaration style)
        Binding("enter", "submit('both')", "Send A+B", id="send-both", priority=True),
        Binding("ctrl+t", "submit('active')", "Send active", id="send-active", priority=True),
        Binding("shift+enter,ctrl+j", "newline", "New line", id="newline", priority=True, show=False),
    ]

    @dataclass
    class Submitted(Message):
        """The person sent ``text`` to ``target`` ("both" or "active")."""

        composer: Composer
        text: str
        target: str

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, soft_wrap=True, show_line_numbers=False, tab_behavior="focus")
        #: what Enter on an empty box says (nothing, where the box is empty most of the time)
        self.empty_note = ""
        self.show_panes(["a", "b"])

    def show_panes(self, names: Sequence[str]) -> None:
        """Say which panes Enter sends to: "A+B" of two, "A–D" of four."""
        every = "+".join(names).upper() if len(names) == 2 else f"{names[0]}–{names[-1]}".upper()
        self.border_subtitle = f"Enter: {every} · Ctrl+T: active pane · Shift+Enter / Ctrl+J: new line"
        relabel(self, "send-both", f"Send {every}")

    def action_submit(self, target: str) -> None:
        # Enter is a priority binding: the app runs this as soon as it reads the key, while the characters
        # typed just before it may still wait in this widget's queue (keys from tmux send-keys or a paste
        # without bracketed-paste mode come faster than they are taken). Read the text after them.
        self.call_later(self._submit, target)

    def _submit(self, target: str) -> None:
        text = self.text
        if not text.strip():
            if self.empty_note:
                self.notify(self.empty_note, severity="warning")
            return
        self.clear()
        self.post_message(self.Submitted(self, text, target))

    def action_newline(self) -> None:
        self.insert("\n")


def relabel(node: DOMNode, binding_id: str, description: str, tooltip: str = "") -> None:
    """Give the binding ``binding_id`` of ``node`` another description (and tooltip) in the footer; its key, and
    any key the keymap gave it, stay."""
    bindings = node._bindings.key_to_bindings
    for key, on_key in bindings.items():
        bindings[key] = [
            replace(b, description=description, tooltip=tooltip or b.tooltip) if b.id == binding_id else b
            for b in on_key
        ]
    node.refresh_bindings()
