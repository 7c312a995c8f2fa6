"""Text zhbench did not write reaches the screen through one sanitiser: a pasted OSC sequence does not act
on the terminal, a server's model id holding markup does not stop the palette, and notifications show
escape sequences as escapes (issue 26 §4)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from app_driver import wait_until
from textual import events
from textual.command import CommandPalette
from textual.widgets import Input

from tests.engines.remote.fake_server import FakeServer, serve
from zhbench.engines.remote.server import ad_hoc_server
from zhbench.widgets.composer import Composer
from zhbench.workbench.app import ZhbenchApp
from zhbench.workbench.session.config import Config

SIZE = (150, 40)
RETITLE = "\x1b]0;pwned\x07"
MARKUP_ID = "[link=file:///etc/passwd]evil[/link]\x1b]0;x\x07"


@pytest.fixture
def fake_server() -> Iterator[FakeServer]:
    yield from serve(FakeServer(models=[MARKUP_ID]))


async def test_a_pasted_osc_sequence_arrives_as_visible_escapes(make_app: Callable[..., ZhbenchApp]) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        composer = app.query_one(Composer)
        composer.focus()
        app.post_message(events.Paste(f"{RETITLE}标题\u202e反转\n第二行"))  # as the terminal driver posts it
        await pilot.pause()
        assert composer.text == "\\x1b]0;pwned\\x07标题\\u202e反转\n第二行"
        model_filter = app.query_one("#model-filter", Input)  # any widget with the focus: a one-line field
        model_filter.focus()
        app.post_message(events.Paste(f"qwen{RETITLE}"))
        await pilot.pause()
        assert model_filter.value == "qwen\\x1b]0;pwned\\x07"


async def test_a_server_model_id_holding_markup_is_listed_literally_in_the_palette(
    make_app: Callable[..., ZhbenchApp], fake_server: FakeServer, tmp_path: Path
) -> None:
    servers = {"evil": ad_hoc_server(fake_server.url, name="evil")}
    app = make_app(config=Config(path=tmp_path / "config.toml", servers=servers))
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(lambda: app.discovered is not None, what="discovery")
        await pilot.press("ctrl+p")
        await wait_until(lambda: isinstance(app.screen, CommandPalette), what="the palette")
        await pilot.press(*"Load")
        await pilot.pause(0.5)
        shown = "\n".join(str(option.prompt) for option in app.screen.query("CommandList").first().options)
        assert "Load [link=file:///etc/passwd]evil[/link]\\x1b]0;x\\x07 into A" in shown
        assert app.is_running


async def test_a_notification_shows_escape_sequences_as_escapes(make_app: Callable[..., ZhbenchApp]) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        app.notify(f"server {RETITLE} refused", title=f"t{RETITLE}")
        await pilot.pause()
        shown = list(app._notifications)[-1]
        assert (shown.message, shown.title) == ("server \\x1b]0;pwned\\x07 refused", "t\\x1b]0;pwned\\x07")
