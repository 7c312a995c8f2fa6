"""A chat pane: its model's header, the conversation, and a reply that streams in batches.

Everything a model or a person wrote is shown literally (Rich ``Text``, never markup) with control
characters made visible, so ``[bold]``, ``[/]`` or an escape sequence in a reply can neither style nor
break the screen.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, ClassVar, cast

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.content import Content
from textual.markup import escape as escape_markup
from textual.message import Message
from textual.timer import Timer
from textual.widget import Widget
from textual.widgets import Static

from zhbench.plain.redraw import FLUSH_INTERVAL_S
from zhbench.plain.safe_text import visible_text

if TYPE_CHECKING:
    from textual.css.styles import RulesMap

#: a streaming reply that outgrows its lines takes those it will need this far ahead (a fast stream lays the
#: screen out about once a second; a slow one as before, a line at a time)
GROWTH_AHEAD_S = 2.0
#: ... but never more than this many empty lines
MAX_SPARE_LINES = 12


#: the header of a pane with no model: title, and what to do
NO_MODEL = ("no model", "Load a model from the list: a / b, or Enter for the active pane.")


#: the most characters of a message a pane draws: Textual wraps a message again at every layout, and a long
#: paste (200 KB) held the app for seconds at each; the model, the transcript and the export get all of it
SHOWN_CHARS = 4000


def literal(text: str) -> Text:
    return Text(visible_text(text), no_wrap=False)


def bounded(text: str) -> Text:
    """``text`` as a pane draws it: its first ``SHOWN_CHARS`` characters, and a dim line saying how many more
    there are and where they are."""
    if len(text) <= SHOWN_CHARS:
        return literal(text)
    body = literal(text[:SHOWN_CHARS])
    more = len(text) - SHOWN_CHARS
    body.append(
        f"\n… {more:,} more characters not shown: the model got all of it, and the transcript "
        "(Ctrl+S exports it) has it",
        style="dim",
    )
    return body


class MessageView(Static):
    """One user message or finished reply (its first ``SHOWN_CHARS`` characters). A user message with its transcript
    id takes the focus (a click, Tab), and Enter or e on it asks to edit it; ``note`` is a dim line under it (which
    branch it begins)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter,e", "edit", "Edit message", id="edit-message", tooltip="Edit it: a branch from here")
    ]

    class EditAsked(Message):
        """The person asked to edit the message of ``view``."""

        def __init__(self, view: MessageView) -> None:
            super().__init__()
            self.view = view

    def __init__(self, text: str, *, role: str, record_id: str = "", note: str = "") -> None:
        body = bounded(text)
        if note:
            body.append(f"\n{visible_text(note)}", style="dim")
        super().__init__(body, markup=False, classes=role)
        self.text = text
        self.record_id = record_id
        self.can_focus = role == "user" and bool(record_id)

    def action_edit(self) -> None:
        self.post_message(self.EditAsked(self))


#: how a reasoning model's thinking is drawn, apart from its answer
THINKING_STYLE = "dim italic"


def with_thinking(reasoning: str, text: str) -> Content:
    """A reply as the pane draws it: the thinking (dimmed) above the answer, both shown literally."""
    if not reasoning:
        return Content(visible_text(text))
    return Content.assemble((visible_text(reasoning), THINKING_STYLE), "\n\n" if text else "", visible_text(text))


class ReplyView(Static):
    """A reply in progress: pieces are buffered and drawn at most every ``FLUSH_INTERVAL_S``."""

    def __init__(self, *, note: str | None = None) -> None:
        super().__init__(literal(note or "…"), markup=False, classes="assistant streaming")
        self.text = ""
        self.reasoning = ""
        self.redraws = 0
        #: redraws that changed the reply's height, and so needed a layout of the screen
        self.layouts = 0
        self._flush_timer: Timer | None = None
        self._reserved_lines = 1
        self._grown_at = time.monotonic()

    def append(self, piece: str, reasoning: str = "") -> None:
        """More of the answer, and of the thinking, to draw at the next tick."""
        self.text += piece
        self.reasoning += reasoning
        if self._flush_timer is None:
            # On a shared clock, so that both panes' redraws land in the same screen update.
            delay = FLUSH_INTERVAL_S - time.monotonic() % FLUSH_INTERVAL_S
            self._flush_timer = self.set_timer(delay, self._flush)

    def _flush(self) -> None:
        """Redraw the reply. A redraw in place repaints just this reply; a reply that outgrows its lines lays
        the screen out again, which moves and repaints everything around it. So a reply that streams fast
        takes the lines it will need in the next ``GROWTH_AHEAD_S``, and most redraws happen in place."""
        self._flush_timer = None
        self.redraws += 1
        content = with_thinking(self.reasoning, self.text)
        width = self.content_size.width
        # as Textual measures a widget's content (widget.py), its styles read as the rules of the text
        rules = cast("RulesMap", self.styles)
        height = content.get_height(rules, width) if width else self._reserved_lines + 1
        grown = height > self._reserved_lines
        if grown:
            now = time.monotonic()
            lines_per_s = (height - self._reserved_lines) / max(now - self._grown_at, FLUSH_INTERVAL_S)
            spare = min(MAX_SPARE_LINES, round(lines_per_s * GROWTH_AHEAD_S))
            self._reserved_lines, self._grown_at = height + spare, now
            self.styles.min_height = self._reserved_lines
            self.layouts += 1
        self.update(content, layout=grown)

    def finish(
        self,
        text: str,
        *,
        stats: str,
        stopped: bool = False,
        error: str | None = None,
        reasoning: str = "",
        version: str = "",
    ) -> None:
        """Show the final text (authoritative over what streamed), its thinking, and the reply's stats line,
        which starts with ``version`` (which of the reply's versions this is, and the keys to the others)."""
        if self._flush_timer is not None:
            self._flush_timer.stop()
            self._flush_timer = None
        self.text, self.reasoning = text, reasoning
        self.remove_class("streaming")
        self.styles.min_height = None
        body = literal(text)
        if reasoning:
            body = Text(visible_text(reasoning), style=THINKING_STYLE) + Text("\n\n" if text else "") + body
        footer = Text("\n")
        if stopped:
            footer.append("[stopped] ", style="bold yellow")
        if error:
            footer.append(f"[error] {visible_text(error)}\n", style="bold red")
        if version:
            footer.append(f"{version} · ", style="bold")
        footer.append(stats, style="dim")
        self.update(body + footer)


#: a conversation drawn at once paints this many of its last messages and replies first
FIRST_PAINT_VIEWS = 40


class ChatPane(Vertical, can_focus=True):
    """Pane A or B: a header naming its model, device and parameters, then the conversation."""

    DEFAULT_CSS = """
    ChatPane { width: 1fr; height: 1fr; border: round $foreground 30%; }
    ChatPane:focus-within, ChatPane:focus { border: round $accent; }
    ChatPane { border-title-color: $foreground-muted; }
    ChatPane.active { border-title-color: $accent; }
    ChatPane > .pane-header { height: auto; max-height: 4; padding: 0 1; color: $text-muted; }
    ChatPane > .pane-status { height: auto; padding: 0 1; color: $warning; display: none; }
    ChatPane > .pane-status.shown { display: block; }
    ChatPane > .pane-status.error { color: $error; }
    ChatPane > VerticalScroll { height: 1fr; padding: 0 1; }
    ChatPane MessageView, ChatPane ReplyView { margin: 1 0 0 0; width: 1fr; }
    ChatPane .user { color: $text; text-style: bold; }
    ChatPane MessageView.user:focus { background: $accent 20%; }
    ChatPane .assistant { color: $text; }
    ChatPane .notice { color: $text-muted; text-style: italic; }
    """

    def __init__(self, pane: str, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.pane = pane
        self.border_title = f"{pane.upper()} · {NO_MODEL[0]}"
        self.current_reply: ReplyView | None = None

    def compose(self) -> ComposeResult:
        yield Static(literal(NO_MODEL[1]), classes="pane-header")
        yield Static("", classes="pane-status", markup=False)
        yield VerticalScroll(classes="pane-log")

    def on_mount(self) -> None:
        self.log_view.anchor()

    @property
    def log_view(self) -> VerticalScroll:
        return self.query_one(".pane-log", VerticalScroll)

    def show_no_model(self) -> None:
        self.set_model(*NO_MODEL)

    def set_model(self, title: str, detail: str) -> None:
        # a border title is read as markup: a model's name or path is escaped to stay the text it is
        self.border_title = f"{self.pane.upper()} · {escape_markup(visible_text(title))}"
        self.query_one(".pane-header", Static).update(literal(detail))

    def set_status(self, text: str | None, *, error: bool = False) -> None:
        """A line under the header: loading progress, or why something failed (None hides it)."""
        status = self.query_one(".pane-status", Static)
        status.update(literal(text or ""))
        status.set_class(bool(text), "shown")
        status.set_class(error, "error")

    def add_message(self, text: str, *, role: str) -> MessageView:
        view = MessageView(text, role=role)
        self.log_view.mount(view)
        return view

    def begin_reply(self, *, note: str | None = None) -> ReplyView:
        self.current_reply = ReplyView(note=note)
        self.log_view.mount(self.current_reply)
        return self.current_reply

    def add_all(self, views: Sequence[Callable[[], MessageView | ReplyView]]) -> None:
        """A whole conversation (a reopened session's), each message or finished reply made by its function:
        the last ``FIRST_PAINT_VIEWS``, which fill the pane, made and mounted at once; the earlier ones above
        them ``FIRST_PAINT_VIEWS`` at a time, one batch after each frame, so a long conversation is on
        screen at once and the app answers keys while the rest goes in."""
        tail = [make() for make in views[-FIRST_PAINT_VIEWS:]]
        replies = [view for view in tail if isinstance(view, ReplyView)]
        if replies:
            self.current_reply = replies[-1]
        self.log_view.mount_all(tail)
        if tail and len(views) > len(tail):
            self.call_after_refresh(self._add_earlier, list(views[: -len(tail)]), tail[0])

    def _add_earlier(self, views: list[Callable[[], MessageView | ReplyView]], first_shown: Widget) -> None:
        if first_shown.parent is not self.log_view:  # cleared or redrawn meanwhile
            return
        batch = [make() for make in views[-FIRST_PAINT_VIEWS:]]
        self.log_view.mount_all(batch, before=first_shown)
        if len(views) > len(batch):
            self.call_after_refresh(self._add_earlier, views[: -len(batch)], batch[0])

    def clear(self) -> None:
        self.current_reply = None
        self.log_view.remove_children()
