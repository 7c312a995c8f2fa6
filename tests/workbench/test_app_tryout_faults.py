"""Faults a tryout of the app found: a long message held the app for seconds, an edit typed while a reply
streamed was lost, labels that said two panes with three or four, and a few rough edges."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from app_driver import models_loaded, replies_done, wait_until
from test_app import send
from test_app_keys import footer_drawn

from zhbench.widgets.chat_pane import SHOWN_CHARS, ChatPane, MessageView
from zhbench.widgets.composer import Composer
from zhbench.widgets.edit_dialog import EditDialog
from zhbench.widgets.pane_switcher import PaneSwitcher
from zhbench.workbench.app import ZhbenchApp
from zhbench.workbench.session.config import Config

SIZE = (150, 40)


def notes(app: ZhbenchApp) -> list[str]:
    return [str(n.message) for n in app._notifications]


def user_views(app: ZhbenchApp, pane: str) -> list[MessageView]:
    return [view for view in app.query_one(f"#pane-{pane}", ChatPane).query(MessageView) if view.has_class("user")]


async def test_a_long_message_shows_its_beginning_says_how_much_more_and_the_model_gets_all_of_it(
    make_app: Callable[..., ZhbenchApp], standin_dir: Callable[..., Path]
) -> None:
    app = make_app(preload={"a": str(standin_dir("gpt2-dialogbot"))})
    long = ("长文本" * 20_000)[:50_000]
    async with app.run_test(size=SIZE) as pilot:
        await models_loaded(app, "a")
        app.bench.pane("a").params = app.bench.pane("a").params.with_overrides({"max_new_tokens": 2})  # type: ignore[union-attr]
        await send(pilot, app, long)
        await replies_done(app)
        await pilot.pause()
        assert app.bench.pane("a").history[0]["content"] == long  # the model got all of it
        view = user_views(app, "a")[-1]
        drawn = str(view.content)
        assert len(drawn) < SHOWN_CHARS + 200 and drawn.startswith(long[:SHOWN_CHARS])
        assert f"{len(long) - SHOWN_CHARS:,} more characters not shown" in drawn and "transcript" in drawn

        view.focus()
        await pilot.press("enter")  # editing it: refused with one line, never opened cut short
        await pilot.pause()
        assert not isinstance(app.screen, EditDialog)
        assert any(note.startswith("Not opened for editing: the message has 50,000 characters") for note in notes(app))


async def test_the_edit_dialog_does_not_open_while_a_pane_the_message_went_to_is_replying(
    make_app: Callable[..., ZhbenchApp], standin_dir: Callable[..., Path]
) -> None:
    # a stand-in with no context limit: its reply goes on until it is stopped (GPT-2's ended at its context)
    app = make_app(preload={"a": str(standin_dir("chatyuan"))})
    async with app.run_test(size=SIZE) as pilot:
        await models_loaded(app, "a")
        app.bench.pane("a").params = app.bench.pane("a").params.with_overrides({"max_new_tokens": 2})  # type: ignore[union-attr]
        await send(pilot, app, "第一句")
        await replies_done(app)
        app.bench.pane("a").params = app.bench.pane("a").params.with_overrides({"max_new_tokens": 100_000})  # type: ignore[union-attr]
        await send(pilot, app, "第二句")
        await wait_until(lambda: app.bench.pane("a").busy, what="A replying")
        user_views(app, "a")[0].focus()
        await pilot.press("enter")
        await pilot.pause()
        assert not isinstance(app.screen, EditDialog)  # nothing typed yet, nothing to lose
        assert any(note.startswith("Not editable now: pane A is still replying") for note in notes(app))
        await pilot.press("escape")
        await replies_done(app)
        user_views(app, "a")[0].focus()
        await pilot.press("enter")  # once the reply is done it opens
        await wait_until(lambda: isinstance(app.screen, EditDialog), what="the edit dialog")


async def test_the_send_and_swap_labels_follow_the_pane_count(
    make_app: Callable[..., ZhbenchApp], tmp_path: Path
) -> None:
    app = make_app(config=Config(path=tmp_path / "config.toml", panes=4))
    async with app.run_test(size=(260, 40)) as pilot:
        await pilot.pause()
        composer = app.query_one("#composer", Composer)
        assert str(composer.border_subtitle).startswith("Enter: A–D ·")
        footer = await footer_drawn(app)
        assert "Send A–D" in footer and "Swap" in footer and "A+B" not in footer and "A/B" not in footer
        swap = next(active.binding for active in app.screen.active_bindings.values() if active.binding.id == "swap")
        assert swap.tooltip == "Exchange the active pane (A) with the next (B)"
        for _ in range(2):
            app.bench_screen.deck.remove_pane()
        await pilot.pause()
        assert app.bench.names == ["a", "b"]  # two again: the two-pane wording
        assert str(composer.border_subtitle).startswith("Enter: A+B ·")
        footer = await footer_drawn(app)
        assert "Send A+B" in footer and "Swap A/B" in footer


async def test_the_palette_offers_add_and_remove_pane_only_where_they_can_act(
    make_app: Callable[..., ZhbenchApp], tmp_path: Path
) -> None:
    app = make_app(config=Config(path=tmp_path / "config.toml", panes=4))
    async with app.run_test(size=(200, 40)) as pilot:
        await pilot.pause()
        titles = {title for title, _, _ in app.bench_screen.palette_commands()}
        assert "Add pane" not in titles and "Remove pane" in titles
        await app.bench_screen.deck.set_count(2)  # as a reopened two-pane session does
        titles = {title for title, _, _ in app.bench_screen.palette_commands()}
        assert "Add pane" in titles and "Remove pane" not in titles


async def test_a_reopened_session_of_four_panes_starts_with_pane_a_active(
    make_app: Callable[..., ZhbenchApp],
) -> None:
    app = make_app()
    async with app.run_test(size=(200, 40)) as pilot:
        await pilot.pause()
        await app.bench_screen.deck.set_count(4)  # what reopening a session of four panes does first
        await pilot.pause()
        assert app.bench.names == ["a", "b", "c", "d"] and app.bench_screen.active_pane == "a"


async def test_sending_an_empty_edit_says_so_and_keeps_the_dialog(
    make_app: Callable[..., ZhbenchApp], standin_dir: Callable[..., Path]
) -> None:
    app = make_app(preload={"a": str(standin_dir("gpt2-dialogbot"))})
    async with app.run_test(size=SIZE) as pilot:
        await models_loaded(app, "a")
        app.bench.pane("a").params = app.bench.pane("a").params.with_overrides({"max_new_tokens": 2})  # type: ignore[union-attr]
        await send(pilot, app, "第一句")
        await replies_done(app)
        user_views(app, "a")[0].focus()
        await pilot.press("enter")
        await wait_until(lambda: isinstance(app.screen, EditDialog), what="the edit dialog")
        app.screen.query_one(Composer).text = "  "
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, EditDialog)
        assert any(note.startswith("Not sent: the edit is empty") for note in notes(app))


async def test_the_pane_switchers_hint_fits_an_80_column_terminal(
    make_app: Callable[..., ZhbenchApp], tmp_path: Path
) -> None:
    app = make_app(config=Config(path=tmp_path / "config.toml", panes=4))
    async with app.run_test(size=(80, 30)) as pilot:
        switcher = app.query_one(PaneSwitcher)
        await wait_until(lambda: switcher.display, what="one pane at a time")
        await pilot.pause()
        hint = str(switcher.render())
        assert "next pane" in hint and hint.endswith("when wider")
        assert switcher.content_region.width >= len(hint)  # every character drawn, none cut
