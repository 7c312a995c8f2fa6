"""The real app, headless, with a local stand-in in one pane and a model on a local server in the other."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from app_driver import models_loaded, replies_done, wait_until

from tests.engines.remote.fake_server import FakeServer, chunk, serve, stream
from zhbench.engines.remote.server import ad_hoc_server
from zhbench.widgets.chat_pane import ChatPane, ReplyView
from zhbench.widgets.composer import Composer
from zhbench.widgets.model_list import ModelTable
from zhbench.workbench.app import ZhbenchApp
from zhbench.workbench.session.config import Config

SIZE = (150, 40)


@pytest.fixture
def fake_server() -> Iterator[FakeServer]:
    yield from serve(FakeServer())


async def test_a_server_model_fails_midway_in_its_pane_and_the_local_pane_finishes(
    make_app: Callable[..., ZhbenchApp], standin_dir: Callable[..., Path], fake_server: FakeServer, tmp_path: Path
) -> None:
    fake_server.chat = stream([chunk("一半", model="tiny-chat-v2"), '{"error": {"message": "worker died"}}'])
    config = Config(path=tmp_path / "config.toml", servers={"local": ad_hoc_server(fake_server.url, name="local")})
    app = make_app(config=config, preload={"a": str(standin_dir("gpt2-dialogbot")), "b": "local/tiny-chat"})
    async with app.run_test(size=SIZE) as pilot:
        await models_loaded(app, "a", "b")
        composer = app.query_one(Composer)
        composer.focus()
        composer.text = "你好"
        await pilot.press("enter")
        await replies_done(app)
        view = app.query_one("#pane-b", ChatPane).query(ReplyView).last()
        assert "worker died" in str(view.content)
        assert app.bench.pane("a").history[-1]["role"] == "assistant"
        assert app.bench.transcript is not None
        records = [json.loads(line) for line in app.bench.transcript.path.read_text(encoding="utf-8").splitlines()]
        pane_b = records[0]["panes"]["b"]
        assert (pane_b["base_url"], pane_b["server_model"]) == (fake_server.url, "tiny-chat")
        reply_b = [r for r in records if r.get("pane") == "b" and r.get("role") == "assistant"][-1]
        assert reply_b["partial"] is True and reply_b["content"] == "一半" and "worker died" in reply_b["error"]
        assert reply_b["served_model"] == "tiny-chat-v2"  # what the server said answered, not the id asked for


async def test_a_configured_servers_models_are_in_the_model_list_and_load_from_it(
    make_app: Callable[..., ZhbenchApp], fake_server: FakeServer, tmp_path: Path
) -> None:
    down = ad_hoc_server("http://127.0.0.1:9/v1", name="down")  # the discard port: nothing listens there
    servers = {"local": ad_hoc_server(fake_server.url, name="local"), "down": down}
    app = make_app(config=Config(path=tmp_path / "config.toml", servers=servers))
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(lambda: app.discovered is not None, what="discovery")
        await wait_until(lambda: isinstance(app.focused, Composer), what="the bench set up")
        served = [row for row in app.rows if row.source == "server"]
        assert [(row.key, row.base_url) for row in served] == [("local/tiny-chat", fake_server.url)]
        assert any("server down cannot be reached" in n.message for n in app._notifications)

        await pilot.press("ctrl+f")  # find a model: the filter has the focus
        await pilot.press(*"tiny-chat", "enter")  # Enter: from the filter to the list
        assert isinstance(app.focused, ModelTable)
        await pilot.press("b")
        await models_loaded(app, "b")
        assert app.bench.pane("b").engine.describe().family == "openai-compat"
