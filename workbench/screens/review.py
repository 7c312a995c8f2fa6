"""Reviewing a batch run blind: item by item, two models' answers as "Model A" and "Model B"; one key votes,
the names show, and the next item follows. Each vote goes to the vote store like an arena vote.

Nothing runs a model here: the answers are the run's. Nothing names a model before the vote (the run's
folder name is the batch's, not a model's).
"""

from __future__ import annotations

import random
import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Footer, Header, Static

from zhbench.engines.types import stats_summary
from zhbench.widgets.chat_pane import ChatPane
from zhbench.workbench.screens.arena import VOTE_BINDINGS, vote_keys
from zhbench.workbench.session.arena.leaks import maker_names
from zhbench.workbench.session.arena.rounds import VERDICT_NAMES, blind_stats
from zhbench.workbench.session.arena.votes import ArenaDataError, Battle, Verdict, VoteStore
from zhbench.workbench.session.batch.review import ReviewPair, battle_of_review, review_pairs
from zhbench.workbench.session.batch.store import AnswerRecord, RunLog

if TYPE_CHECKING:
    from zhbench.workbench.app import ZhbenchApp


class ReviewScreen(Screen[None]):
    """The answers of the batch run in ``folder``, two at a time, blind."""

    SUB_TITLE = "batch review · blind"
    BINDINGS: ClassVar[list[BindingType]] = [
        *VOTE_BINDINGS,
        Binding("ctrl+n", "next", "Next item", id="review-next"),
        Binding("ctrl+b", "app.pop_screen", "Bench", id="review-leave"),
    ]

    app: ZhbenchApp

    def __init__(self, folder: Path, *, rng: random.Random | None = None) -> None:
        super().__init__()
        self.folder = folder
        self.rng = rng or random.Random()
        self.run_log: RunLog | None = None
        self.pairs: list[ReviewPair] = []
        self.index = -1
        self.voted = False

    def compose(self) -> ComposeResult:
        yield Header(show_clock=False, icon="⚖")
        yield Static("", id="review-progress", markup=False)
        with Horizontal(id="body"):
            yield ChatPane("a", id="pane-a")
            yield ChatPane("b", id="pane-b")
        with Vertical(id="bottom"):
            yield Footer()

    def on_mount(self) -> None:
        from zhbench.workbench.session.batch.store import RunFolderError

        try:
            self.run_log, self.pairs = review_pairs(self.folder, self.rng)
        except (RunFolderError, OSError) as exc:
            self.query_one("#review-progress", Static).update(f"Cannot review {self.folder}: {exc}")
            return
        self.action_next()

    @property
    def pair(self) -> ReviewPair | None:
        return self.pairs[self.index] if 0 <= self.index < len(self.pairs) else None

    def action_next(self) -> None:
        """Show the next item's two answers, blind."""
        self.index += 1
        self.voted = False
        pair = self.pair
        progress = self.query_one("#review-progress", Static)
        if pair is None:
            done = "every item reviewed" if self.pairs else "no item that two models both answered"
            progress.update(f"{self.folder.name}: {done}. Ctrl+B: back to the bench.")
            return
        category = f" · {pair.item.category}" if pair.item.category else ""
        progress.update(f"{self.folder.name}: item {self.index + 1} of {len(self.pairs)}{category}")
        self._draw(pair, None)

    def _draw(self, pair: ReviewPair, battle: Battle | None) -> None:
        """Both answers with the item: blind, or named as ``battle`` (the vote on them) names them, with
        every figure of their stats."""
        sides = (("a", pair.answer_a, battle and battle.model_a), ("b", pair.answer_b, battle and battle.model_b))
        for name, answer, side in sides:
            pane = self.query_one(f"#pane-{name}", ChatPane)
            pane.clear()
            if side is None:
                pane.set_model(f"Model {name.upper()}", f"blind: the names show after your vote · {vote_keys(self)}")
            else:
                pane.set_model(side.id, f"answer seed {answer.seed}")
            for message in pair.item.messages:
                pane.add_message(message["content"], role=message["role"])
            _show_answer(pane, answer, revealed=side is not None)

    def action_vote(self, verdict: Verdict) -> None:
        pair = self.pair
        if pair is None or self.run_log is None:
            return
        if self.voted:
            self.notify("This item has its vote: Ctrl+N shows the next.", severity="warning")
            return
        battle = battle_of_review(pair, self.run_log, verdict, maker_names=maker_names(self.app.config.maker_names))
        try:
            with VoteStore.open() as store:
                store.record(battle)
        except (ArenaDataError, sqlite3.Error, OSError) as exc:
            self.notify(f"The vote could not be stored: {exc}", severity="error", timeout=15)
            return
        self.voted = True
        self._draw(pair, battle)
        names = f"A was {battle.model_a.id}, B was {battle.model_b.id}"
        self.notify(f"Voted: {VERDICT_NAMES[verdict]}. {names}. Ctrl+N: next item.", timeout=10)


def _show_answer(pane: ChatPane, answer: AnswerRecord, *, revealed: bool) -> None:
    """The run's answer as a finished reply; until the vote its stats only its timing (the rest could tell a
    family apart)."""
    message = answer.message
    if not revealed:
        stats = blind_stats(message.stats)
    else:
        stats = stats_summary(message.stats, message.params) if message.stats else ""
    pane.begin_reply().finish(message.content, stats=stats, error=message.error, reasoning=message.reasoning or "")
