"""The arena runs only the actions it lists (issue 28 item 4): a bench action added later, which may name a
model or change the pair, is off in the arena until the arena lists it, by key, footer or palette alike."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from functools import partial
from pathlib import Path

import pytest
from app_driver import wait_until
from textual.binding import Binding
from textual.screen import Screen

from zhbench.workbench.app import ZhbenchApp
from zhbench.workbench.screens.arena import ArenaScreen
from zhbench.workbench.screens.bench import BenchScreen
from zhbench.workbench.session.arena.rounds import Contender

SIZE = (150, 40)


def bench_actions() -> set[str]:
    """Every action the bench screen has of its own (Textual's screen actions aside), bound to a key or not."""
    own = {name for cls in BenchScreen.__mro__ if issubclass(cls, BenchScreen) for name in vars(cls)}
    methods = {name.removeprefix("action_") for name in own if name.startswith("action_")}
    bound = {binding.action.partition("(")[0] for binding in BenchScreen.BINDINGS if isinstance(binding, Binding)}
    return methods | {action for action in bound if "." not in action}  # "app.quit" is the app's


def action_of(run: Callable[[], object]) -> str:
    """The screen action a palette entry runs (its callback is the action's method, or a partial of it)."""
    method = run.func if isinstance(run, partial) else run
    assert inspect.ismethod(method) and method.__name__.startswith("action_"), run
    return method.__name__.removeprefix("action_")


async def test_a_bench_action_the_arena_does_not_list_is_off_there_by_key_footer_and_palette(
    make_app: Callable[..., ZhbenchApp], standin_dir: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    ran: list[Screen[None]] = []

    def action_name_the_models(self: BenchScreen) -> None:  # a bench action added after the arena was written
        ran.append(self)

    monkeypatch.setattr(BenchScreen, "action_name_the_models", action_name_the_models, raising=False)
    pool = [Contender(str(standin_dir("gpt2-dialogbot"))), Contender(str(standin_dir("dialogpt-zh")))]
    app = make_app(arena_pool=pool)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(lambda: isinstance(app.screen, ArenaScreen), what="the arena")
        await pilot.pause()
        arena = app.screen
        assert isinstance(arena, ArenaScreen)

        assert await app.run_action("name_the_models", app.bench_screen)  # on the bench it runs
        assert not await app.run_action("name_the_models", arena)  # in the arena it does not
        assert ran == [app.bench_screen]

        allowed = ArenaScreen.ALLOWED_ACTIONS
        assert allowed is not None
        for action in bench_actions() | {"name_the_models"}:
            assert bool(arena.check_action(action, ())) == (action in allowed), action
        # what could name a model (the list, the family's parameter fields, the export) or change the pair
        assert not allowed & {"toggle_models", "find_model", "edit_params", "swap", "export", "rescan", "vote_named"}
        assert not allowed & {"cancel_download", "name_the_models"}

        # the footer shows only allowed keys of the screen (Textual's "app." and "screen." ones aside), and the
        # palette runs only allowed actions
        active = arena.active_bindings.values()
        footer = [shown.binding.action for shown in active if shown.node is arena and shown.enabled]
        assert footer and all(action.partition("(")[0] in allowed for action in footer if "." not in action), footer
        palette = [action_of(run) for _, _, run in arena.palette_commands()]
        assert palette and set(palette) <= allowed, palette
        assert arena.check_action("copy_text", ())  # Textual's own screen actions stay: copying still works
