"""A screen whose footer fits its width: Textual's ``Footer`` cuts off the keys past the right edge, so here its
keys are packed closer where they do not fit with its spacing, and where they still do not fit, those the
screen names leave it, in its order, until the rest do (each stays bound, and in the palette)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from typing import ClassVar

from rich.cells import cell_len
from textual import events
from textual.app import App
from textual.binding import ActiveBinding, Binding
from textual.screen import Screen
from textual.widgets import Footer

#: cells the footer's command-palette key takes at its right end ("▏^p palette"), compact and not
PALETTE_CELLS = {True: 11, False: 12}


def footer_cells(app: App[object], active: Iterable[ActiveBinding], *, compact: bool) -> int:
    """The cells Textual's ``Footer`` takes for ``active``: one key per action shown, each its key, a space
    and its description, then a cell of margin (compact) or a cell either side; then the palette key."""
    first: dict[str, Binding] = {}
    for shown in active:
        if shown.binding.show:
            first.setdefault(shown.binding.action, shown.binding)
    spacing = 1 if compact else 2
    return PALETTE_CELLS[compact] + sum(
        cell_len(app.get_key_display(binding)) + 1 + cell_len(binding.description) + spacing
        for binding in first.values()
    )


class FittedFooterScreen(Screen[None]):
    """A screen with a ``Footer`` that fits its width (see the module)."""

    #: the ids of the keys that leave the footer, in this order, while it is too narrow for every key: each
    #: stays bound and is in the palette
    FOOTER_GIVES_WAY: ClassVar[tuple[str, ...]] = ()

    def on_resize(self, event: events.Resize) -> None:
        self.fit_footer()

    def on_descendant_focus(self, event: events.DescendantFocus) -> None:
        self.fit_footer()  # the focused widget's own keys come and go (the composer's, the model list's)

    def fit_footer(self) -> None:
        """Pack the footer's keys closer where they do not fit with its spacing, and redraw it for the width."""
        if self.is_mounted:
            every_key = super().active_bindings.values()  # before any gives way
            self.query_one(Footer).compact = footer_cells(self.app, every_key, compact=False) > self.size.width
            self.refresh_bindings()

    @property
    def active_bindings(self) -> dict[str, ActiveBinding]:
        """The keys in effect; while the footer is too narrow for all of them, those of ``FOOTER_GIVES_WAY``
        stay bound but leave it, in that order, until the rest fit."""
        active = super().active_bindings
        gives_way, hidden = list(self.FOOTER_GIVES_WAY), set[str]()
        while gives_way and footer_cells(self.app, _shown(active, hidden).values(), compact=True) > self.size.width:
            hidden.add(gives_way.pop(0))
        return _shown(active, hidden)


def _shown(active: dict[str, ActiveBinding], hidden: set[str]) -> dict[str, ActiveBinding]:
    """``active`` with the bindings whose id is in ``hidden`` left out of the footer."""
    return {
        key: shown._replace(binding=replace(shown.binding, show=False)) if shown.binding.id in hidden else shown
        for key, shown in active.items()
    }
