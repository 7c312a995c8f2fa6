"""Screenshots of the main screen: the first screen, the light theme, a filtered model list."""

from __future__ import annotations

from collections.abc import Callable

from app_driver import fixed_memory, wait_until

from zhbench.widgets.composer import Composer
from zhbench.workbench.app import ZhbenchApp


def first_screen(make_app: Callable[..., ZhbenchApp]) -> tuple[ZhbenchApp, Callable[[object], object]]:
    app = make_app(memory_reader=fixed_memory)

    async def ready(pilot: object) -> None:
        await wait_until(lambda: bool(app.rows) and app.query_one("#meter").reading is not None, what="rows")
        # The composer's cursor blinks on a timer: a screenshot must not depend on when it is taken.
        app.query_one(Composer).cursor_blink = False

    return app, ready


def test_the_first_screen(snap_compare, make_app) -> None:
    app, ready = first_screen(make_app)
    assert snap_compare(app, terminal_size=(140, 34), run_before=ready)


def test_the_first_screen_in_the_light_theme(snap_compare, make_app) -> None:
    app, ready = first_screen(make_app)

    async def light(pilot: object) -> None:
        await ready(pilot)
        app.theme = "zhbench-light"

    assert snap_compare(app, terminal_size=(140, 34), run_before=light)


def test_the_model_list_filtered(snap_compare, make_app) -> None:
    app, ready = first_screen(make_app)

    async def typed(pilot: object) -> None:
        await ready(pilot)
        app.query_one("#model-filter").focus()

    assert snap_compare(app, terminal_size=(140, 34), run_before=typed, press=list("clue"))
