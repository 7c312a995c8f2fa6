"""The blind arena: two models drawn from a pool answer as "Model A" and "Model B"; the person votes with
one key, and only then sees which was which.

The bench screen's panes, composer and reply flow, with everything that could tell the two sides apart
kept off the screen until the vote: headers say "Model A"/"Model B" and the same decoding (both sides
answer with the arena's own preset, ``ARENA_DECODING``), loading says the same, a reply's stats line
shows only its timing, the memory meter no per-side figures; there is no model list, no parameter dialog,
no export, and the palette offers only the arena's own commands. After the vote everything shows. Each
round unloads the last pair before loading the next, so two models at a time are in memory, not four,
and draws only a pair whose estimates fit together in what is free.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator, Sequence
from dataclasses import replace
from functools import partial
from typing import Any, ClassVar

from textual.binding import ActiveBinding, Binding, BindingType
from textual.screen import Screen

from zhbench.plain.memory_reading import MemoryReading
from zhbench.workbench import workers
from zhbench.workbench.commands import Command, key_of, keyed
from zhbench.workbench.screens.bench import BenchScreen
from zhbench.workbench.screens.pane_deck import PaneDeck
from zhbench.workbench.session.arena.rounds import (
    VERDICT_NAMES,
    ArenaError,
    Contender,
    blind_stats,
    decoding_text,
    draw_pair,
    pair_fit_problem,
)
from zhbench.workbench.session.arena.votes import Battle, Verdict, VoteStore
from zhbench.workbench.session.bench import Bench
from zhbench.workbench.session.panes import ShownEntry

#: one key per vote, in the arena and in a batch review (priority: the composer's text area has F6 and F7 of
#: its own, select line and select all)
VOTE_BINDINGS: tuple[BindingType, ...] = (
    Binding("f5", "vote('a')", "A better", id="vote-a", priority=True),
    Binding("f6", "vote('b')", "B better", id="vote-b", priority=True),
    Binding("f7", "vote('tie')", "Tie", id="vote-tie", priority=True),
    Binding("f8", "vote('bothbad')", "Both bad", id="vote-bothbad", priority=True),
)
#: the votes' binding ids, in the order the footer shows them
VOTE_IDS = [binding.id for binding in VOTE_BINDINGS if isinstance(binding, Binding)]
#: what each pane is called until the vote
BLIND_NAMES = {"a": "Model A", "b": "Model B"}
#: pairs drawn before the arena gives up finding two models that fit in memory together
PAIR_DRAWS = 12


def vote_keys(screen: Screen[Any]) -> str:
    """The vote keys as the person's keymap binds them, as the footer writes them (``f5 A better · …``)."""
    votes = [binding for binding in VOTE_BINDINGS if isinstance(binding, Binding)]
    return " · ".join(f"{key_of(screen, binding.id or '')} {binding.description}" for binding in votes)


class BlindDeck(PaneDeck):
    """The arena's two panes: until the vote, headers say "Model A"/"Model B" and a reply's stats line its
    timing only; then everything shows."""

    def __init__(self, screen: Screen[Any], bench: Bench) -> None:
        super().__init__(screen, bench)
        self.revealed = False

    def show_header(self, pane: str) -> None:
        if self.revealed:
            super().show_header(pane)
            return
        detail = f"blind · {decoding_text(self.bench.decoding)}\nchat, then vote: {vote_keys(self.screen)}"
        self.pane_widget(pane).set_model(BLIND_NAMES[pane], detail)

    def stats_line(self, pane: str, entry: ShownEntry) -> str:
        """Before the vote, a reply's timing only (the rest could tell a family or a size); then all of it."""
        return (entry.stats or "") if self.revealed else blind_stats(entry.reply_stats)


class ArenaScreen(BenchScreen):
    """Blind battles between two models of ``pool``, each vote stored in the vote database."""

    DECK = BlindDeck
    deck: BlindDeck

    SUB_TITLE = "arena · blind"
    SHOWS_MODEL_LIST = False
    #: the actions the arena runs: its own, and those of the bench that name no model and leave the pair as
    #: drawn. Every other bench action is off here, one added later too (Textual merges the bench's bindings
    #: into this screen's): the model list, the parameter dialog whose fields are the family's, the export,
    #: swap, a named vote, a download. Sessions only says that they open from the bench.
    ALLOWED_ACTIONS = frozenset(
        {"vote", "new_round", "leave", "stop", "regenerate", "other_reply", "clear", "switch_pane", "sessions"}
    )
    #: a narrow arena's footer keeps the votes, Send and Stop: the rest leave it in this order (each stays
    #: bound, and all but Ctrl+T, sending to one pane only, are in the palette: Quit among Textual's own)
    FOOTER_GIVES_WAY = ("clear", "regenerate", "leave-arena", "send-active", "new-round", "quit")
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "stop", "Stop", id="stop"),
        Binding("ctrl+r", "regenerate", "Regenerate", id="regenerate"),
        Binding("ctrl+o", "switch_pane", "Other pane", id="switch-pane", show=False),
        *VOTE_BINDINGS,
        Binding("ctrl+n", "new_round", "New round", id="new-round"),
        Binding("ctrl+b", "leave", "Bench", id="leave-arena"),
    ]

    def __init__(
        self,
        bench: Bench,
        pool: Sequence[Contender],
        *,
        store: VoteStore | None = None,
        rng: random.Random | None = None,
    ) -> None:
        super().__init__(bench, preload={}, offer_demos=False)
        self.pool = list(pool)
        self._store = store
        self.rng = rng or random.Random()
        self.pair: tuple[Contender, Contender] | None = None
        #: models that cannot decode as the arena's preset asks: not drawn again (their specs)
        self.unpaired: set[str] = set()

    def on_mount(self) -> None:
        self.call_after_refresh(self._start)

    @property
    def active_bindings(self) -> dict[str, ActiveBinding]:
        """The bench's, the votes first and in order (the composer's own F6 and F7, which the votes
        override, would otherwise put B and Tie ahead of A)."""
        active = super().active_bindings
        votes = sorted(
            (key for key, shown in active.items() if shown.binding.id in VOTE_IDS),
            key=lambda key: VOTE_IDS.index(active[key].binding.id or ""),
        )
        return {key: active[key] for key in votes} | {key: shown for key, shown in active.items() if key not in votes}

    def _start(self) -> None:
        self._set_up()
        self.action_new_round()

    def show_models(self, event: workers.ModelsDiscovered) -> None:
        """The arena's pool is fixed when it opens: the model list is not shown here."""

    # --- rounds -------------------------------------------------------------------------------------

    def action_new_round(self) -> None:
        """Unload the last pair, draw the next and load it, blind."""
        if any(state.busy for state in self.bench.panes):
            self.bench.stop(self.bench.names)
            self.notify("Stopping the replies: press Ctrl+N again for the next round.")
            return
        freed = sum(weight or 0 for _, _, weight in self.bench.held_memory())
        if not all(self.bench.unload(name) for name in self.bench.names[:2]):
            self.notify("A model is still loading: wait for it, then press Ctrl+N.", severity="warning")
            return
        try:
            pair = self._draw_fitting_pair(freed)
        except ArenaError as exc:
            self.notify(f"No round: {exc}.", severity="error", timeout=15)
            return
        self.pair, self.deck.revealed = pair, False
        for name, contender in zip(self.bench.names, pair, strict=False):
            widget = self.pane_widget(name)
            widget.clear()
            widget.set_model(BLIND_NAMES[name], "blind: the names show after your vote")
            self.load_model(name, contender.spec, BLIND_NAMES[name])

    def _draw_fitting_pair(self, freed_bytes: int) -> tuple[Contender, Contender]:
        """A pair whose two models fit in memory together, tried over a few draws; ``ArenaError`` saying
        why (in sizes, not names) when none did."""
        problem = None
        pool = [contender for contender in self.pool if contender.spec not in self.unpaired]
        for _ in range(PAIR_DRAWS):
            pair = draw_pair(pool, self.rng, self.pair)
            problem = pair_fit_problem(
                pair, device=self.app.device, servers=self.app.config.servers, freed_bytes=freed_bytes
            )
            if problem is None:
                return pair
        raise ArenaError(f"no pair drawn fits in memory ({problem}): pick smaller models with --pool")

    @property
    def revealed(self) -> bool:
        """Whether this round's vote is in, and the names on show."""
        return self.deck.revealed

    def report_load_problem(self, pane: str, problem: str) -> None:
        """A model that cannot take the arena's preset would not answer as the other does: it leaves the pool
        (its reason unsaid, which could name its family) and another pair is drawn."""
        if self.pair is None:
            return
        self.unpaired.add(self.pair[self.bench.names.index(pane)].spec)
        self.notify(
            f"Model {pane.upper()} cannot decode as the arena's preset asks, so the two would not answer alike: "
            "it leaves the pool and another pair is drawn (`zhbench arena --own-decoding` keeps it, each model "
            "at its own decoding).",
            severity="warning",
            timeout=15,
        )
        self.call_after_refresh(self.action_new_round)

    def show_load_failure(self, pane: str, what: str, reason: str) -> None:
        """Before the vote, a model that did not load leaves the pool unnamed (its reason names its file or
        its store) and another pair is drawn; after it, as on the bench."""
        if self.revealed or self.pair is None:
            super().show_load_failure(pane, what, reason)
            return
        self.unpaired.add(self.pair[self.bench.names.index(pane)].spec)
        self.notify(
            f"Model {pane.upper()} could not be loaded, so it leaves the pool and another pair is drawn "
            "(`zhbench models` says what is wrong with each model).",
            severity="warning",
            timeout=15,
        )
        self.call_after_refresh(self.action_new_round)

    def _tick_loading(self) -> None:
        """While blind, loading says how long, not what step: the steps are a family's own."""
        if self.revealed:
            super()._tick_loading()
            return
        for state in self.bench.panes:
            if state.loading is not None:
                elapsed = time.monotonic() - state.load_started
                self.pane_widget(state.name).set_status(f"loading {state.loading}… {elapsed:.1f}s")

    def memory_shown(self, reading: MemoryReading) -> MemoryReading:
        """Before the vote the meter shows the whole process's memory, not what each side's model holds."""
        return reading if self.revealed else replace(reading, panes=())

    # --- votes --------------------------------------------------------------------------------------

    def action_vote(self, verdict: Verdict) -> None:
        """Store the vote on the whole conversation, then reveal the names."""
        if self.pair is None:
            return
        if self.revealed:
            self.notify("This round has its vote: Ctrl+N starts the next.", severity="warning")
            return
        battle = self.record_vote(verdict, anonymous=True)
        if battle is None:
            return
        self.deck.revealed = True
        for name in self.bench.names:
            self.deck.redraw(name)  # the headers, and each reply's whole stats line
        names = f"A was {battle.model_a.id}, B was {battle.model_b.id}"
        leaked = " A reply named its maker: the battle is kept, left out of the ranking by default." * battle.leaked
        self.notify(f"Voted: {VERDICT_NAMES[verdict]}. {names}.{leaked} Ctrl+N: next round.", timeout=15)

    def store_battle(self, battle: Battle) -> None:
        """The arena keeps its vote database open from the first vote to the last."""
        if self._store is None:
            self._store = VoteStore.open()
        self._store.record(battle)

    def palette_commands(self) -> Iterator[Command]:
        """What the palette offers in the arena: its own actions, none naming a model."""
        votes: list[tuple[Verdict, str, str]] = [
            ("a", "Vote: A is better", "Store the vote, then see the names"),
            ("b", "Vote: B is better", "Store the vote, then see the names"),
            ("tie", "Vote: tie", "Both as good"),
            ("bothbad", "Vote: both bad", "Neither answered well"),
        ]
        for verdict, title, help_text in votes:
            yield keyed(self, f"vote-{verdict}", title, help_text, partial(self.action_vote, verdict))
        yield keyed(self, "new-round", "New round", "Draw and load the next pair", self.action_new_round)
        yield self._stop_command()
        yield self._regenerate_command()
        yield self._clear_command()
        yield keyed(self, "leave-arena", "Back to the bench", "Leave the arena", self.action_leave)

    def action_leave(self) -> None:
        self.bench.stop(self.bench.names)
        self.app.pop_screen()

    def on_unmount(self) -> None:
        super().on_unmount()
        self.bench.stop(self.bench.names)
        if self._store is not None:
            self._store.close()
