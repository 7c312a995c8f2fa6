"""The blind arena in the real app: nothing names a model before the vote, the vote is stored, then revealed."""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from pathlib import Path

from app_driver import models_loaded, replies_done, wait_until

from widgets.chat_pane import ChatPane
from widgets.composer import Composer
from workbench.app import ZhbenchApp
from workbench.screens.arena import ArenaScreen
from workbench.session.arena.rounds import Contender
from workbench.session.arena.votes import VoteStore, votes_path

SIZE = (150, 40)


def screen_text(app: ZhbenchApp) -> str:
    """Every character on screen (the screenshot's text), and every notification raised."""
    svg = app.export_screenshot()
    drawn = html.unescape("".join(re.findall(r"<text[^>]*>(.*?)</text>", svg))).replace("\xa0", " ")
    return drawn + "\n".join(notification.message for notification in app._notifications)


def title(app: ZhbenchApp, pane: str) -> str:
    return str(app.screen.query_one(f"#pane-{pane}", ChatPane).border_title)


async def test_a_blind_round_names_no_model_until_the_vote_then_stores_it_and_reveals(
    make_app: Callable[..., ZhbenchApp], standin_dir: Callable[..., Path]
) -> None:
    pool = [
        Contender(str(standin_dir("gpt2-dialogbot")), "dialogbot"),
        Contender(str(standin_dir("dialogpt-zh")), "dialogpt"),
    ]
    app = make_app(arena_pool=pool)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(lambda: isinstance(app.screen, ArenaScreen), what="the arena")
        arena = app.screen
        assert isinstance(arena, ArenaScreen)
        await models_loaded_in(arena)
        secrets = ("dialogbot", "dialogpt", "gpt2", "tiny-", str(Path(pool[0].spec).parent))
        for name in "ab":
            assert title(app, name) == f"{name.upper()} · Model {name.upper()}"

        await pilot.press("f5")  # nothing to vote on yet
        assert not votes_path().exists()

        composer = arena.query_one(Composer)
        composer.focus()
        composer.text = "你好，介绍一下你自己"
        await pilot.press("enter")
        await wait_until(lambda: all(not p.busy for p in arena.bench.panes) and arena.bench.pane("b").history)
        await pilot.pause()
        shown = screen_text(app)
        assert not [secret for secret in secrets if secret in shown], shown

        await pilot.press("f6")  # B is better (the composer has the focus: its own F6 does not win)
        with VoteStore.open() as store:
            (battle,) = store.battles()
        assert battle.verdict == "b" and battle.anonymous and battle.source == "human"
        assert {battle.model_a.id, battle.model_b.id} == {"dialogbot", "dialogpt"}
        assert battle.model_a.id == arena.pair[0].name  # sides as drawn
        assert [m["role"] for m in battle.turns_a] == ["user", "assistant"]
        assert battle.turns_a[0]["content"] == "你好，介绍一下你自己"
        assert battle.model_a.family in ("gpt2-dialogbot", "dialogpt-zh") and battle.model_a.path
        # revealed: each header names its model now
        assert (title(app, "a"), title(app, "b")) == (f"A · {arena.pair[0].name}", f"B · {arena.pair[1].name}")

        await pilot.press("f5")  # one vote per round
        with VoteStore.open() as store:
            assert len(store.battles()) == 1

        await pilot.press("ctrl+n")  # the next round: unloaded, drawn again, blind again
        await models_loaded_in(arena)
        assert title(app, "a") == "A · Model A" and not arena.revealed
        assert all(not p.history for p in arena.bench.panes)

        await pilot.press("ctrl+b")
        assert not isinstance(app.screen, ArenaScreen)


async def models_loaded_in(arena: ArenaScreen) -> None:
    await wait_until(
        lambda: all(p.engine is not None and p.loading is None for p in arena.bench.panes), what="both models"
    )


async def test_the_arena_refuses_a_pool_of_one_model(
    make_app: Callable[..., ZhbenchApp], standin_dir: Callable[..., Path]
) -> None:
    app = make_app(preload={"a": str(standin_dir("gpt2-dialogbot"))})
    async with app.run_test(size=SIZE) as pilot:
        await models_loaded(app, "a")
        app.open_arena([Contender(str(standin_dir("gpt2-dialogbot")), "one")])
        await pilot.pause()
        assert not isinstance(app.screen, ArenaScreen)
        assert "needs two models" in screen_text(app)
        await replies_done(app)
