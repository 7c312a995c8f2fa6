"""Editing an earlier message on the bench, and stepping between the branches that editing made.

Wiring only: ``Bench.edit`` and ``Bench.choose_branch`` keep the branches (``workbench.session.branches``);
this asks for the edited text, keeps the panes in step (an edit goes to every pane that shows the message,
or to none while one of them is busy), and draws the panes again. The blind arena offers none of it.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial
from typing import Any

from textual.binding import Binding, BindingType
from textual.screen import Screen

from zhbench.widgets.chat_pane import MessageView
from zhbench.widgets.edit_dialog import EditDialog
from zhbench.workbench.commands import Command, key_of, keyed
from zhbench.workbench.screens.pane_deck import PaneDeck

#: the keys between the branches at a fork (alt, as between reply versions: the composer has ↑/↓ of its own)
BRANCH_BINDINGS: tuple[BindingType, ...] = (
    Binding(
        "alt+up", "other_branch(-1)", "Earlier branch", id="earlier-branch", show=False,
        tooltip="Show, and go on from, the branch before the one shown at the focused message, or at the last edit",
    ),
    Binding(
        "alt+down", "other_branch(1)", "Later branch", id="later-branch", show=False,
        tooltip="Show, and go on from, the branch after the one shown at the focused message, or at the last edit",
    ),
)  # fmt: skip
#: how much of a message the palette's line to edit it shows
PALETTE_TEXT = 40
#: the longest message the edit dialog opens on: Textual's text area wraps the whole of it at each key (a
#: 200 KB message took 3.8 s a key); a longer one is refused, never cut (an edit sends all the dialog holds)
EDIT_CHARS = 20_000


class Branching:
    """The edits and branches of the panes of ``deck`` on ``screen``."""

    def __init__(self, screen: Screen[Any], deck: PaneDeck) -> None:
        self.screen = screen
        self.deck = deck

    def ask_to_edit(self, pane: str, message: str) -> None:
        """Ask for the new text of the user message ``message`` of ``pane`` (its text to start from), then send
        it in place of the message: a branch from there."""
        bench = self.deck.bench
        entry = next((e for e in bench.pane(pane).shown if e.role == "user" and e.record_id == message), None)
        if entry is None:
            return
        if len(entry.text) > EDIT_CHARS:
            self.screen.notify(
                f"Not opened for editing: the message has {len(entry.text):,} characters, more than the "
                f"{EDIT_CHARS:,} an edit can hold. Send a new message instead.",
                severity="warning",
            )
            return
        busy = self._busy(bench.edit_targets(pane, message))
        if busy:  # refused before anything is typed: the edit could not be sent until the reply ends
            self.screen.notify(f"Not editable now: {busy}. Edit it when it is done.", severity="warning")
            return
        targets = " and ".join(name.upper() for name in bench.edit_targets(pane, message))
        keys = f"{key_of(self.screen, 'earlier-branch')} / {key_of(self.screen, 'later-branch')}"
        explanation = (
            f"The edited message goes to pane(s) {targets} in place of this one, and the conversation goes on "
            f"from it. What followed the message is kept as a branch of its own: {keys} shows it again."
        )

        def answered(text: str | None) -> None:
            if text is not None:
                self.send_edit(pane, message, text)

        dialog = EditDialog(f"Edit your message of turn {entry.turn}", explanation, entry.text)
        self.screen.app.push_screen(dialog, answered)

    def send_edit(self, pane: str, message: str, text: str) -> bool:
        """Send ``text`` in place of ``message`` to every pane that shows it; whether it went. Nothing goes while
        one of them replies or loads: edited in the others only, the conversations would leave step."""
        bench = self.deck.bench
        targets = bench.edit_targets(pane, message)
        busy = self._busy(targets)
        if busy:
            self.screen.notify(f"Not edited: {busy}. Edit again when it is done.", severity="warning")
            return False
        jobs = bench.edit(pane, message, text)
        left = " and ".join(p.upper() for p in targets if p not in {job.pane for job in jobs})  # no model there
        if left:
            said = f"Pane(s) {left}, with no model loaded, keep the message as it was." if jobs else ""
            self.screen.notify(said or f"Not edited: no model loaded in pane(s) {left}.", severity="warning")
        for job in jobs:
            self.deck.redraw(job.pane)
            self.deck.run_reply(job)
        return bool(jobs)

    def _busy(self, targets: list[str]) -> str:
        """Which of ``targets`` reply or load, and so cannot take an edit now ("" when none): "pane A is still
        replying (Esc stops it)"."""
        bench = self.deck.bench
        waiting = [
            p for p in targets if bench.why_not_ready(p) is not None and (bench.pane(p).engine or bench.pane(p).loading)
        ]
        return ", ".join(f"pane {p.upper()} {bench.why_not_ready(p)}" for p in waiting)

    def step(self, step: int) -> None:
        """Show, and go on from, the branch before (-1) or after (1) the one shown at the focused message, or at
        the last fork of the focused pane or of every pane."""
        focused = self.screen.focused
        message = focused.record_id if isinstance(focused, MessageView) else None
        moved = []
        for pane in self.deck.target_panes():
            shown = self.deck.bench.choose_branch(pane, step, message)
            if shown is not None:
                self.deck.redraw(pane)
                moved.append((pane, shown))
        if not moved:
            which = "earlier" if step < 0 else "later"
            self.screen.notify(f"No {which} branch to show (editing a message, Enter on it, starts one).")
        elif message is not None:  # the focus stays on the fork, to step on
            self.screen.call_after_refresh(self._focus_message, *moved[0])

    def _focus_message(self, pane: str, message: str) -> None:
        for view in self.deck.pane_widget(pane).query(MessageView):
            if view.record_id == message:
                view.focus()

    def commands(self, pane: str) -> Iterator[Command]:
        """The palette's lines: the branch keys, and editing each message ``pane`` shows (the latest first)."""
        earlier, later = partial(self.step, -1), partial(self.step, 1)
        yield keyed(self.screen, "earlier-branch", "Earlier branch", "Show and go on from the branch before", earlier)
        yield keyed(self.screen, "later-branch", "Later branch", "Show and go on from the branch after", later)
        for entry in reversed(self.deck.bench.pane(pane).shown):
            if entry.role == "user" and entry.record_id:
                text = " ".join(entry.text.split())
                short = text[:PALETTE_TEXT] + ("…" if len(text) > PALETTE_TEXT else "")
                yield (
                    f"Edit an earlier message: {short}",
                    f"Turn {entry.turn} of pane {pane.upper()}: send it changed, a branch from there (the rest kept)",
                    partial(self.ask_to_edit, pane, entry.record_id),
                )
