"""The keyboard in the real app, as a newcomer meets it (issue 18 item 10): moving between the composer, the
model filter and the list, Esc, and the keys the footer shows."""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from app_driver import models_loaded, replies_done, wait_until
from textual.command import CommandList, CommandPalette
from textual.widgets import Input, Static

from zhbench.widgets.composer import Composer
from zhbench.widgets.model_list import ModelTable
from zhbench.workbench.app import ZhbenchApp
from zhbench.workbench.screens.arena import ArenaScreen
from zhbench.workbench.screens.leaderboard import LeaderboardScreen
from zhbench.workbench.session.arena.rounds import Contender
from zhbench.workbench.session.config import Config

SIZE = (150, 40)


def footer_text(app: ZhbenchApp) -> str:
    """The bottom line of the screen, as drawn."""
    svg = app.export_screenshot()
    lines: dict[str, list[str]] = {}
    for y, text in re.findall(r'<text[^>]*y="([\d.]+)"[^>]*>(.*?)</text>', svg):
        lines.setdefault(y, []).append(text)
    bottom = max(lines, key=float)
    return html.unescape("".join(lines[bottom])).replace("\xa0", " ")


async def footer_drawn(app: ZhbenchApp) -> str:
    """The footer once it is drawn (its palette key, docked at its right end, is there whatever fits)."""
    await wait_until(lambda: "^p palette" in footer_text(app), what="the footer")
    return footer_text(app)


async def bench_ready(app: ZhbenchApp) -> None:
    await wait_until(lambda: app.discovered is not None and isinstance(app.focused, Composer), what="the bench")


async def test_down_in_the_filter_moves_into_the_list(make_app: Callable[..., ZhbenchApp]) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await bench_ready(app)
        await pilot.press("ctrl+f", *"chat", "down")
        assert isinstance(app.focused, ModelTable)
        assert app.focused.cursor_row == 0
        await pilot.press("down")  # from there on, Down moves the cursor
        assert isinstance(app.focused, ModelTable) and app.focused.cursor_row == 1


async def test_typing_in_the_list_goes_on_the_end_of_the_filter(make_app: Callable[..., ZhbenchApp]) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await bench_ready(app)
        await pilot.press("ctrl+f", *"qw", "enter")
        assert isinstance(app.focused, ModelTable)
        await pilot.press(*"en3")  # nothing of the list's own: into the filter, the focus with it
        field = app.query_one("#model-filter", Input)
        assert app.focused is field and field.value == "qwen3"
        assert field.cursor_position == len("qwen3") and field.selection.is_empty
        assert app.query_one(ModelTable).row_count >= 1
        await pilot.press("down", "a")  # a key of the list's own still does what it says
        assert app.focused is app.query_one(ModelTable) and field.value == "qwen3"
        assert any("press d on its row" in n.message for n in app._notifications)


async def test_escape_goes_back_to_the_composer_and_still_stops_a_reply_first(
    make_app: Callable[..., ZhbenchApp], standin_dir: Callable[..., Path]
) -> None:
    long_talker = str(standin_dir("chatyuan"))  # no context limit: replies until stopped
    app = make_app(preload={"a": long_talker, "b": long_talker})
    async with app.run_test(size=SIZE) as pilot:
        await models_loaded(app, "a", "b")
        await pilot.press("ctrl+f", *"chat", "escape")  # from the filter
        assert isinstance(app.focused, Composer)
        await pilot.press("ctrl+f", "enter", "escape")  # from the list
        assert isinstance(app.focused, Composer)

        for state in app.bench.panes:
            state.params = state.params.with_overrides({"max_new_tokens": 100_000})
        app.query_one(Composer).text = "讲个很长的故事"
        await pilot.press("enter")
        await wait_until(lambda: all(s.reply is not None and s.reply.text for s in app.bench.panes), what="text")
        await pilot.press("ctrl+f", "escape")  # replies underway: Esc stops them
        await replies_done(app)
        assert isinstance(app.focused, Input)
        await pilot.press("escape")  # nothing left to stop: back to the composer
        assert isinstance(app.focused, Composer)


async def test_at_80_columns_the_footer_shows_the_keys_a_newcomer_needs(
    make_app: Callable[..., ZhbenchApp],
) -> None:
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await bench_ready(app)
        await pilot.pause()
        footer = footer_text(app)
        for key in ("⏎ Send A+B", "^t Send active", "esc Stop", "f9 Models", "^o Pane", "^f Find", "^q Quit"):
            assert key in footer, footer
        assert footer.rstrip().endswith("^p palette")  # not cut off
        await pilot.press("f9", "ctrl+f", "down")  # the list's keys come first there, and all still fit
        assert isinstance(app.focused, ModelTable)
        footer = footer_text(app)
        for key in ("a → A", "b → B", "d Download", "esc Stop", "f9 Models", "^q Quit"):
            assert key in footer, footer
        assert "Regenerate" not in footer  # the keys also in the palette give way
        await pilot.resize_terminal(150, 40)
        await pilot.pause()
        assert "^r Regenerate" in footer_text(app)


def labels_shown(app: ZhbenchApp) -> list[str]:
    """What the footer should write for each key the screen shows in it, in order."""
    first: dict[str, str] = {}
    for shown in app.screen.active_bindings.values():
        if shown.binding.show:
            first.setdefault(shown.binding.action, f"{app.get_key_display(shown.binding)} {shown.binding.description}")
    return list(first.values())


@pytest.mark.parametrize("width", [100, 130, 151, 200])
async def test_at_any_width_the_footer_shows_whole_keys_and_never_cuts_one(
    make_app: Callable[..., ZhbenchApp], width: int
) -> None:
    app = make_app()
    async with app.run_test(size=(width, 30)) as pilot:
        await bench_ready(app)
        await pilot.pause()
        footer, labels = await footer_drawn(app), labels_shown(app)
        assert footer.rstrip().endswith("^p palette"), footer
        assert "".join(labels) in footer.replace("  ", "").replace(" ⏎", "⏎"), footer  # whole, in order
        assert ("^s Export" in labels) == (width >= 139)  # all keys from 139 columns, packed closer below 152
        assert footer.startswith(" ") == (width >= 152)


@pytest.mark.parametrize("width", [80, 120])
async def test_a_narrow_arena_footer_keeps_the_four_votes_in_order(
    make_app: Callable[..., ZhbenchApp], standin_dir: Callable[..., Path], width: int
) -> None:
    pool = [Contender(str(standin_dir("gpt2-dialogbot"))), Contender(str(standin_dir("dialogpt-zh")))]
    app = make_app(arena_pool=pool)
    async with app.run_test(size=(width, 30)) as pilot:
        await wait_until(lambda: isinstance(app.screen, ArenaScreen), what="the arena")
        await pilot.pause()
        footer = await footer_drawn(app)
        assert footer.startswith("f5 A betterf6 B betterf7 Tief8 Both bad⏎ Send A+B"), footer
        assert "esc Stop" in footer
        assert footer.rstrip().endswith("^p palette"), footer
        assert ("^n New round" in footer) == (width > 80)


async def test_quit_has_a_keymap_id(make_app: Callable[..., ZhbenchApp], tmp_path: Path) -> None:
    app = make_app(config=Config(path=tmp_path / "config.toml", keymap={"quit": "f10"}))
    async with app.run_test(size=SIZE) as pilot:
        await bench_ready(app)
        active = app.screen.active_bindings
        assert active["f10"].binding.id == "quit" and active["f10"].binding.show and "ctrl+q" not in active
        await pilot.press("f10")
        await wait_until(lambda: not app.is_running, what="the app to quit")


@pytest.mark.parametrize("key", ["f9", "ctrl+f", "f2", "f4", "ctrl+s", "f3"])
async def test_the_arena_has_no_key_that_could_name_a_model_or_change_the_pair(
    make_app: Callable[..., ZhbenchApp], standin_dir: Callable[..., Path], key: str
) -> None:
    pool = [Contender(str(standin_dir("gpt2-dialogbot"))), Contender(str(standin_dir("dialogpt-zh")))]
    app = make_app(arena_pool=pool)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(lambda: isinstance(app.screen, ArenaScreen), what="the arena")
        await pilot.pause()
        arena = app.screen
        assert isinstance(arena, ArenaScreen)
        await wait_until(lambda: all(p.engine and not p.loading for p in arena.bench.panes), what="the pair")
        shown = footer_text(app)
        for label in ("Find", "Models", "Parameters", "Swap", "Export"):
            assert label not in shown
        engines = [arena.bench.pane(name).engine for name in "ab"]
        await pilot.press(key)  # a bench key: nothing here (F9 crashed the app, F2 showed the family's fields)
        await pilot.pause()
        assert app.is_running and isinstance(app.screen, ArenaScreen)  # no dialog over it
        assert [arena.bench.pane(name).engine for name in "ab"] == engines  # not swapped
        assert not app.exports_folder.exists() or not any(app.exports_folder.iterdir())  # no export


async def palette_shows(app: ZhbenchApp, pilot: object, query: str) -> str:
    """What the palette lists (titles and help) once ``query`` is typed into it."""
    await pilot.press("ctrl+p")  # type: ignore[attr-defined]
    await wait_until(lambda: isinstance(app.screen, CommandPalette), what="the palette")
    await pilot.press(*query)  # type: ignore[attr-defined]
    await pilot.pause(0.5)  # type: ignore[attr-defined]
    return "\n".join(str(option.prompt) for option in app.screen.query(CommandList).first().options)


async def test_the_palette_names_the_keys_the_keymap_binds(make_app: Callable[..., ZhbenchApp], tmp_path: Path) -> None:
    """Issue 28 item 3: the palette's help said "(Ctrl+R)" whatever key the config's keymap bound."""
    app = make_app(config=Config(path=tmp_path / "config.toml", keymap={"regenerate": "f11", "swap": "f10"}))
    async with app.run_test(size=SIZE) as pilot:
        await bench_ready(app)
        shown = await palette_shows(app, pilot, "Regenerate")
        assert "Another reply to the last message (f11)" in shown, shown
        await pilot.press("escape")
        shown = await palette_shows(app, pilot, "Swap panes")
        assert "Exchange pane A and pane B (f10)" in shown, shown
        await pilot.press("escape")
        await wait_until(lambda: app.screen is app.bench_screen, what="the bench")
        palette = {title: run for title, _, run in app.bench_screen.palette_commands()}
        palette["Leaderboard"]()  # the screen asks, the app opens it
        await wait_until(lambda: isinstance(app.screen, LeaderboardScreen), what="the leaderboard")
        await pilot.pause()  # drawn before the app exits (its header's title is set once it has composed)


async def test_the_arena_names_the_vote_keys_the_keymap_binds(
    make_app: Callable[..., ZhbenchApp], standin_dir: Callable[..., Path], tmp_path: Path
) -> None:
    """Issue 28 item 3: the arena's panes said "F5 A better" and its palette "(F5)" whatever the keymap bound."""
    pool = [Contender(str(standin_dir("gpt2-dialogbot"))), Contender(str(standin_dir("dialogpt-zh")))]
    app = make_app(arena_pool=pool, config=Config(path=tmp_path / "config.toml", keymap={"vote-a": "f12"}))
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(lambda: isinstance(app.screen, ArenaScreen), what="the arena")
        arena = app.screen
        header = arena.query_one("#pane-a .pane-header", Static)
        await wait_until(lambda: "f12 A better · f6 B better" in str(header.content), what="the header")
        shown = await palette_shows(app, pilot, "Vote: A")
        assert "Store the vote, then see the names (f12)" in shown, shown
