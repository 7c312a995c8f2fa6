"""The command palette's one provider: it lists what the screen on top offers (``palette_commands``).

Each screen builds its own entries, from its own bindings: ``keyed`` writes the key of a binding as the
person's keymap binds it (``app.get_key_display``), so the palette says the key that works. This module
imports no screen.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any, Protocol, runtime_checkable

from textual.command import DiscoveryHit, Hit, Hits, Provider
from textual.content import Content
from textual.markup import escape
from textual.screen import Screen

from zhbench.plain.safe_text import visible_text

#: a palette entry: title, one line of help, and what it does
Command = tuple[str, str, Callable[[], object]]


@runtime_checkable
class OffersCommands(Protocol):
    """A screen with entries of its own in the palette."""

    def palette_commands(self) -> Iterable[Command]: ...


def key_of(screen: Screen[Any], binding_id: str) -> str:
    """The key of the screen's binding ``binding_id`` as the footer writes it (the keymap may have changed it)."""
    bound = [active.binding for active in screen.active_bindings.values() if active.binding.id == binding_id]
    return screen.app.get_key_display(bound[0]) if bound else "?"


def keyed(screen: Screen[Any], binding_id: str, title: str, help_text: str, run: Callable[[], object]) -> Command:
    """The palette entry of one of the screen's keys: its help ends with the key that does the same."""
    return title, f"{help_text} ({key_of(screen, binding_id)})", run


class ScreenCommands(Provider):
    """The commands of the screen on top in the palette (Ctrl+P), beside Textual's own (theme, quit…)."""

    def _commands(self) -> list[Command]:
        screen = self.screen
        return list(screen.palette_commands()) if isinstance(screen, OffersCommands) else []

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
