"""The command palette's screen commands: on the bench every action, each pane's chat commands, loading
any model and opening the arena; in the arena only its own (nothing that names a model before the vote).

They follow the context: chat commands for the model each pane runs, a load command for every model
on offer into every pane.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import partial
from typing import TYPE_CHECKING

from textual.command import DiscoveryHit, Hit, Hits, Provider
from textual.content import Content
from textual.markup import escape

from zhbench.plain.safe_text import visible_text
from zhbench.workbench.session.arena.rounds import VERDICT_NAMES

if TYPE_CHECKING:
    from zhbench.workbench.screens.arena import ArenaScreen
    from zhbench.workbench.screens.bench import BenchScreen

#: a palette entry: title, one line of help, and what it does
Command = tuple[str, str, Callable[[], object]]


def bench_commands(screen: BenchScreen) -> Iterator[Command]:
    """Everything the palette offers on the bench, in the order it lists them."""
    yield "Stop generating", "Stop the reply of the focused pane, or of both (Esc)", screen.action_stop
    yield "Regenerate", "Another reply to the last message (Ctrl+R)", screen.action_regenerate
    yield "Earlier reply version", "Show and go on from the one before (Alt+←)", partial(screen.action_other_reply, -1)
    yield "Later reply version", "Show and go on from the one after (Alt+→)", partial(screen.action_other_reply, 1)
    yield "Clear conversation", "Clear the focused pane, or both (Ctrl+L)", screen.action_clear
    yield "Swap panes", "Exchange pane A and pane B (F4)", screen.action_swap
    yield "Switch active pane", "Ctrl+T sends to the active pane (Ctrl+O)", screen.action_switch_pane
    yield "Edit parameters", "Decoding settings of the active pane (F2)", screen.action_edit_params
    yield "Show or hide the model list", "More room for the panes (F9)", screen.action_toggle_models
    yield "Export session", "Write this session as Markdown and JSON (Ctrl+S)", screen.action_export
    yield "Sessions", "Reopen a past session, or find one by its text (Ctrl+G)", screen.action_sessions
    yield "Rescan models", "Look for models on this machine and the servers again (F3)", screen.action_rescan
    yield "Cancel download", "Stop the download started from the model list", screen.action_cancel_download
    yield "Arena: blind battle", "Two models drawn at random answer unnamed; vote, then see", screen.app.open_arena
    for verdict, meaning in VERDICT_NAMES.items():
        yield (
            f"Vote (named): {meaning}",
            "On the conversations of A and B, knowing the models; left out of the ranking by default",
            partial(screen.action_vote_named, verdict),
        )
    yield "Leaderboard", "Ratings of the arena's votes with 95% intervals, and win rates", screen.app.open_leaderboard
    for state in screen.bench.panes:
        engine = state.engine
        for command, help_text in (engine.chat_commands() if engine else {}).items():
            yield (
                f"Pane {state.name.upper()}: {command}",
                f"{engine.family if engine else '?'} chat command: {help_text}",
                partial(screen.run_chat_command, state.name, command),
            )
    for row in screen.app.rows:
        if row.available:
            for pane in screen.bench.names:
                yield (
                    f"Load {row.name} into {pane.upper()}",
                    f"{row.family} · {row.key}",
                    partial(screen.request_load, pane, row.key, row.name),
                )


def arena_commands(screen: ArenaScreen) -> Iterator[Command]:
    """What the palette offers in the arena: its actions, none naming a model."""
    yield "Vote: A is better", "Store the vote, then see the names (F5)", partial(screen.action_vote, "a")
    yield "Vote: B is better", "Store the vote, then see the names (F6)", partial(screen.action_vote, "b")
    yield "Vote: tie", "Both as good (F7)", partial(screen.action_vote, "tie")
    yield "Vote: both bad", "Neither answered well (F8)", partial(screen.action_vote, "bothbad")
    yield "New round", "Draw and load the next pair (Ctrl+N)", screen.action_new_round
    yield "Stop generating", "Stop the reply of the focused pane, or of both (Esc)", screen.action_stop
    yield "Regenerate", "Another reply to the last message (Ctrl+R)", screen.action_regenerate
    yield "Clear conversation", "Clear the focused pane, or both (Ctrl+L)", screen.action_clear
    yield "Back to the bench", "Leave the arena (Ctrl+B)", screen.action_leave


class ScreenCommands(Provider):
    """A screen's commands in the palette (Ctrl+P), beside Textual's own (theme, quit…)."""

    def _commands(self) -> list[Command]:
        raise NotImplementedError

    def _shown(self) -> Iterator[tuple[str, str, Callable[[], object]]]:
        """Each command's title with its controls made visible, and its help as markup that shows it as
        written: titles and help carry model names and servers' model ids, and Textual reads a string
        prompt or help as markup (``[link=file:///etc/passwd]`` in an id stopped the app)."""
        for title, help_text, callback in self._commands():
            yield visible_text(title), escape(visible_text(help_text)), callback

    async def discover(self) -> Hits:
        for title, help_text, callback in self._shown():
            yield DiscoveryHit(Content(title), callback, text=title, help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for title, help_text, callback in self._shown():
            score = matcher.match(title)
            if score > 0:
                # Textual's highlight reads its text as markup: a title with a bracket shows unhighlighted
                shown = Content(title) if "[" in title else matcher.highlight(title)
                yield Hit(score, shown, callback, text=title, help=help_text)


class BenchCommands(ScreenCommands):
    def _commands(self) -> list[Command]:
        from zhbench.workbench.screens.bench import BenchScreen

        return list(bench_commands(self.screen)) if isinstance(self.screen, BenchScreen) else []


class ArenaCommands(ScreenCommands):
    def _commands(self) -> list[Command]:
        from zhbench.workbench.screens.arena import ArenaScreen

        return list(arena_commands(self.screen)) if isinstance(self.screen, ArenaScreen) else []
