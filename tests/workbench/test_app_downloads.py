"""A download from the model list, in the real app: its progress under the list, cancelled from the palette."""

from __future__ import annotations

from collections.abc import Callable

from app_driver import wait_until
from textual.widgets import Static

from tests.engines.hub.conftest import REPO, fake_hub, repo_folder  # noqa: F401  # the fake hub's fixtures
from tests.engines.hub.fake_hub import FakeHub
from zhbench.widgets.composer import Composer
from zhbench.widgets.model_list import ModelTable
from zhbench.widgets.question import QuestionDialog
from zhbench.workbench.app import ZhbenchApp

SIZE = (150, 40)


async def test_a_download_shows_its_progress_under_the_list_and_cancel_download_stops_it(
    make_app: Callable[..., ZhbenchApp],
    fake_hub: FakeHub,  # noqa: F811
) -> None:
    fake_hub.bytes_per_s = 300_000  # the weights take about ten seconds
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(lambda: app.discovered is not None and isinstance(app.focused, Composer), what="the bench")
        await pilot.press("ctrl+f", *"dialogbot-base", "enter")
        assert isinstance(app.focused, ModelTable)
        await pilot.press("d")
        await wait_until(lambda: isinstance(app.screen, QuestionDialog), what="the question")
        await pilot.press("enter")
        status = app.screen.query_one("#model-status", Static)
        await wait_until(lambda: " of " in str(status.content), what="the download's progress")
        assert str(status.content).startswith(f"{REPO}: ") and status.has_class("shown")

        await pilot.press("d")  # one download at a time
        await wait_until(lambda: told(app, f"{REPO} is downloading: wait for it"), what="the refusal")

        palette = {title: run for title, _, run in app.bench_screen.palette_commands()}
        palette["Cancel download"]()
        await wait_until(lambda: told(app, f"Download of {REPO} stopped: cancelled"), what="the download to stop")
        assert not status.has_class("shown")
        assert not next(row for row in app.rows if row.id == REPO).available
        palette["Cancel download"]()
        await wait_until(lambda: told(app, "Nothing is downloading."), what="the answer")


def told(app: ZhbenchApp, text: str) -> bool:
    """Whether a notification raised says ``text``."""
    return any(text in notification.message for notification in app._notifications)
