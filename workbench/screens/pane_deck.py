"""The panes of a bench-like screen and the life of their replies, for the bench and the arena alike.

A ``PaneDeck`` holds the ``ChatPane`` of each pane of a ``Bench`` (two to four) and the pane switcher shown
when they do not fit side by side. It sends a message to the panes and runs their replies in workers, draws
what the workers report, regenerates, shows another version of a reply, stops, clears and swaps, and
redraws a pane as the session holds it. The screen that composes it keeps its keys and forwards the workers'
reports; the arena composes a deck of its own that names no model before the vote (``BlindDeck``).
"""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING, Any

from textual.screen import Screen
from textual.widget import Widget

from zhbench.plain.safe_text import visible_text
from zhbench.widgets.chat_pane import ChatPane, MessageView, ReplyView
from zhbench.widgets.composer import Composer, relabel
from zhbench.widgets.pane_switcher import PaneSwitcher, panes_fit
from zhbench.widgets.question import QuestionDialog
from zhbench.workbench import workers
from zhbench.workbench.commands import key_of
from zhbench.workbench.session.bench import Bench, ReplyJob
from zhbench.workbench.session.branches import branch_place
from zhbench.workbench.session.panes import APP_PANES, ShownEntry, params_summary

if TYPE_CHECKING:
    from collections.abc import Iterator

#: what the question before a conversation is cleared or left behind says about it
ON_DISK = "Every message stays in this session's transcript on disk (Ctrl+S exports it)."


class PaneDeck:
    """The panes of ``bench`` on ``screen``: their widgets, their layout and their replies."""

    def __init__(self, screen: Screen[Any], bench: Bench) -> None:
        self.screen = screen
        self.bench = bench
        self.active = bench.names[0]
        #: the screen is torn down: a worker may report while the app exits
        self.gone = False

    def panes(self) -> Iterator[ChatPane]:
        """What the screen composes in its body: one pane per name (and, above the body, a ``PaneSwitcher``)."""
        for name in self.bench.names:
            yield ChatPane(name, id=f"pane-{name}")

    def pane_widget(self, pane: str) -> ChatPane:
        return self.screen.query_one(f"#pane-{pane}", ChatPane)

    # --- layout ----------------------------------------------------------------------------------

    def fit(self) -> None:
        """Every pane side by side where they fit beside the model list; else the active one only, with the
        switcher above it."""
        if not self.screen.is_mounted:
            return
        body = self.screen.query_one("#body")
        beside = sum(w.outer_size.width for w in body.children if w.display and not isinstance(w, ChatPane))
        one = not panes_fit(body.size.width - beside, len(self.bench.names))
        for pane in self.bench.names:
            self.pane_widget(pane).display = not one or pane == self.active
        switcher = self.screen.query_one(PaneSwitcher)
        switcher.display = one
        if one:
            switcher.show(self.bench.names, self.active, key_of(self.screen, "switch-pane"))

    def activate(self, pane: str) -> None:
        """Make ``pane`` the active one: the one Send active sends to, and the one shown when only one is."""
        self.active = pane
        for name in self.bench.names:
            self.pane_widget(name).set_class(name == pane, "active")
        composer = self.screen.query_one(Composer)
        composer.border_title = f"Message · active pane: {pane.upper()}"
        composer.show_panes(self.bench.names)
        if len(self.bench.names) > 2:
            following = self.bench.names[(self.bench.names.index(pane) + 1) % len(self.bench.names)]
            tooltip = f"Exchange the active pane ({pane.upper()}) with the next ({following.upper()})"
            relabel(self.screen, "swap", "Swap", tooltip)
        else:
            relabel(self.screen, "swap", "Swap A/B", "Exchange the active pane and the next")
        self.fit()

    def switch(self) -> None:
        names = self.bench.names
        self.activate(names[(names.index(self.active) + 1) % len(names)])

    def focus_moved(self, widget: Widget) -> None:
        """The focus went to ``widget``: the pane it is in becomes the active one."""
        for pane in self.bench.names:
            pane_widget = self.pane_widget(pane)
            if widget is pane_widget or pane_widget in widget.ancestors:
                self.activate(pane)

    async def add_pane(self) -> None:
        """Another pane after the last (up to four), empty, and active."""
        if len(self.bench.names) >= APP_PANES[-1]:
            self.screen.notify(f"At most {APP_PANES[-1]} panes side by side.", severity="warning")
            return
        name = self.bench.add_pane()
        assert name is not None
        await self.screen.query_one("#body").mount(ChatPane(name, id=f"pane-{name}"))
        self.activate(name)

    def remove_pane(self) -> None:
        """Take the last pane away (never below two), once it is idle; asked first when it holds a
        conversation (the transcript keeps it)."""
        name = self.bench.names[-1]
        state = self.bench.pane(name)
        if len(self.bench.names) <= APP_PANES[0]:
            self.screen.notify(f"The bench keeps at least {APP_PANES[0]} panes.", severity="warning")
            return
        if state.busy or state.loading:
            self.screen.notify(f"Pane {name.upper()} is busy: stop it (Esc) or let it load first.", severity="warning")
            return

        def remove(choice: str | None = "remove") -> None:
            if choice is not None and self.bench.names[-1] == name and self.bench.remove_pane() == name:
                self.pane_widget(name).remove()
                self.activate(self.active if self.active in self.bench.names else self.bench.names[-1])

        if not state.shown:
            remove()
            return
        title = f"Remove pane {name.upper()} and its conversation with {state.label or 'its model'}?"
        self.screen.app.push_screen(QuestionDialog(title, ON_DISK, [("remove", "Remove")]), remove)

    async def set_count(self, count: int) -> None:
        """As many idle panes as ``count`` (within two to four), added or taken away at the end; the first active."""
        count = min(max(count, APP_PANES[0]), APP_PANES[-1])
        while len(self.bench.names) < count:
            await self.add_pane()
        while len(self.bench.names) > count and (name := self.bench.remove_pane()) is not None:
            self.pane_widget(name).remove()
        self.activate(self.bench.names[0])

    # --- headers and drawing ---------------------------------------------------------------------

    def show_header(self, pane: str) -> None:
        state = self.bench.pane(pane)
        if state.engine is None or state.params is None:
            return
        info = state.engine.describe()
        detail = f"{info.family} · {info.placement()}"
        if state.random_weights:
            kind = "DEMO" if state.demo else "stand-in"
            detail = f"{kind} · random weights, replies are noise · " + detail
        self.pane_widget(pane).set_model(state.label or "?", f"{detail}\n{params_summary(state.params)}")

    def redraw(self, pane: str) -> None:
        """Draw ``pane`` again as the session holds it: its header and its whole conversation."""
        state = self.bench.pane(pane)
        widget = self.pane_widget(pane)
        widget.clear()
        widget.set_status(None)
        if state.engine is None and not state.shown:
            widget.show_no_model()
            return
        self.show_header(pane)
        widget.add_all([partial(self._view_of, pane, entry) for entry in state.shown])

    def _view_of(self, pane: str, entry: ShownEntry) -> MessageView | ReplyView:
        """A message, or a finished reply drawn as the session recorded it."""
        if entry.role == "user":
            return self.message_view(pane, entry)
        view = ReplyView()
        self.draw_reply(pane, view, entry)
        return view

    def message_view(self, pane: str, entry: ShownEntry) -> MessageView:
        """A user message; on a screen that edits messages, one to focus and edit, saying which branch it begins
        where it was edited."""
        if not self.screen.check_action("edit_message", ()):
            return MessageView(entry.text, role="user")
        place = branch_place(self.bench.pane(pane), entry)
        if place is None:  # most messages: no keys to look up (a long conversation draws hundreds)
            return MessageView(entry.text, role="user", record_id=entry.record_id)
        keys = f"{key_of(self.screen, 'earlier-branch')} {key_of(self.screen, 'later-branch')}"
        note = f"branch {place[0]}/{place[1]} ({keys})"
        return MessageView(entry.text, role="user", record_id=entry.record_id, note=note)

    def draw_reply(self, pane: str, view: ReplyView, entry: ShownEntry) -> None:
        """Draw a finished reply as the session recorded it; the last one says which of its versions it is."""
        state = self.bench.pane(pane)
        place = state.reply_version() if entry is state.shown[-1] else None
        version = ""
        if place is not None:
            keys = f"{key_of(self.screen, 'earlier-reply')} {key_of(self.screen, 'later-reply')}"
            version = f"reply {place[0]}/{place[1]} ({keys})"
        view.finish(
            entry.text,
            stats=self.stats_line(pane, entry),
            stopped=entry.stopped,
            error=entry.error,
            reasoning=entry.reasoning,
            version=version,
        )

    def stats_line(self, pane: str, entry: ShownEntry) -> str:
        """The line under a finished reply: its stats, after the model that wrote it where that is not the
        pane's model now (a conversation another model carried on)."""
        label = self.bench.pane(pane).label
        author = f"by {visible_text(entry.model)} · " if entry.model is not None and entry.model != label else ""
        return author + (entry.stats or "")

    # --- sending and replying --------------------------------------------------------------------

    def send(self, text: str, targets: list[str]) -> bool:
        """Send ``text`` as the user's message to each target pane that can take it; whether any could.

        A message for several panes goes to all of them or to none while one of them is still replying or
        loading: sent to the others only, it would leave the conversations different from then on. A pane
        with no model at all is left out (there is no conversation to keep in step).
        """
        reasons = {pane: self.bench.why_not_ready(pane) for pane in targets}
        states = {pane: self.bench.pane(pane) for pane in targets}
        waiting = [p for p in targets if reasons[p] is not None and (states[p].engine or states[p].loading)]
        if len(targets) > 1 and waiting:
            busy = ", ".join(f"pane {pane.upper()} {reasons[pane]}" for pane in waiting)
            self.screen.notify(
                f"Nothing sent: {busy}. Send again when it is done, so all stay in step.", severity="warning"
            )
            return False
        for pane, why in reasons.items():
            if why is not None:
                self.screen.notify(f"Pane {pane.upper()} {why}.", severity="warning")
        jobs = self.bench.send(text, targets)
        for job in jobs:
            self.pane_widget(job.pane).log_view.mount(self.message_view(job.pane, self.bench.pane(job.pane).shown[-1]))
            self.run_reply(job)
        return bool(jobs)

    def run_reply(self, job: ReplyJob) -> None:
        note = None
        if job.params.num_beams > 1:
            note = f"… beam search with {job.params.num_beams} beams cannot stream: the reply appears when it is done"
        self.pane_widget(job.pane).begin_reply(note=note)
        post = self.screen.post_message
        self.screen.run_worker(
            lambda: workers.run_reply(post, job), thread=True, group=f"reply-{job.pane}", exit_on_error=False
        )

    def reply_chunk(self, event: workers.ReplyChunkArrived) -> None:
        if self.gone or not self.bench.reply_progressed(event.pane, event.generation, event.piece, event.reasoning):
            return
        view = self.pane_widget(event.pane).current_reply
        if view is not None:
            view.append(event.piece, event.reasoning)

    def reply_finished(self, event: workers.ReplyFinished) -> None:
        if not self.gone:
            self._show_end(event.pane, self.bench.reply_finished(event.pane, event.generation, event.reply))

    def reply_failed(self, event: workers.ReplyFailed) -> None:
        if not self.gone:
            entry = self.bench.reply_failed(event.pane, event.generation, event.error, event.partial)
            self._show_end(event.pane, entry)

    def _show_end(self, pane: str, entry: ShownEntry | None) -> None:
        view = self.pane_widget(pane).current_reply
        if entry is not None and view is not None:
            self.draw_reply(pane, view, entry)

    # --- what the keys do ------------------------------------------------------------------------

    def target_panes(self) -> list[str]:
        """The pane that has focus, or every pane when the focus is elsewhere (the composer, the model list)."""
        focused = self.screen.focused
        for pane in self.bench.names:
            widget = self.pane_widget(pane)
            if focused is not None and (focused is widget or widget in focused.ancestors):
                return [pane]
        return self.bench.names

    def stop(self) -> None:
        """Stop the replies of the focused pane, or of every pane; when none is replying, back to the composer
        (from the model list, or a pane)."""
        panes = self.target_panes()
        if any(self.bench.pane(pane).busy for pane in panes):
            self.bench.stop(panes)
        else:
            self.screen.query_one(Composer).focus()

    def regenerate(self) -> None:
        for pane in self.target_panes():
            had_reply = bool(self.bench.pane(pane).shown) and self.bench.pane(pane).shown[-1].role == "assistant"
            job = self.bench.regenerate(pane)
            if job is None:
                continue
            widget = self.pane_widget(pane)
            if had_reply and widget.current_reply is not None:
                widget.current_reply.remove()
            self.run_reply(job)

    def other_reply(self, step: int) -> None:
        """Show, and go on from, the version of the last reply before (-1) or after (1) the one shown, in the
        focused pane or in every pane."""
        moved = False
        for pane in self.target_panes():
            entry = self.bench.choose_reply(pane, step)
            view = self.pane_widget(pane).current_reply
            if entry is not None and view is not None:
                self.draw_reply(pane, view, entry)
                moved = True
        if not moved:
            which = "earlier" if step < 0 else "later"
            self.screen.notify(f"No {which} version of the last reply to show (Regenerate makes another).")

    def clear(self) -> None:
        """Clear the focused pane's conversation, or every pane's; asked first when there is one to lose."""
        panes = []
        for pane in self.target_panes():
            if self.bench.pane(pane).busy:
                self.screen.notify(f"Pane {pane.upper()} is replying: stop it (Esc) first.", severity="warning")
            else:
                panes.append(pane)

        def clear(choice: str | None = "clear") -> None:
            if choice is not None:
                for pane in panes:
                    if self.bench.clear(pane):
                        self.pane_widget(pane).clear()

        talking = [pane.upper() for pane in panes if self.bench.pane(pane).shown]
        if not talking:
            clear()
            return
        plural = "s" if len(talking) > 1 else ""
        title = f"Clear the conversation{plural} of pane{plural} {' and '.join(talking)}?"
        self.screen.app.push_screen(QuestionDialog(title, ON_DISK, [("clear", "Clear")]), clear)

    def swap(self) -> None:
        """Exchange what the active pane and the next hold (A and B of two panes)."""
        names = self.bench.names
        pair = (self.active, names[(names.index(self.active) + 1) % len(names)])
        if not self.bench.swap(*pair):
            which = " and ".join(pane.upper() for pane in pair)
            self.screen.notify(f"Wait for panes {which} to finish (or stop them) before swapping.", severity="warning")
            return
        for pane in pair:
            self.redraw(pane)
