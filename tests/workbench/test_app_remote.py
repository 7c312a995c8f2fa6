"""The real app, headless, with a local stand-in in one pane and a model on a local server in the other."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from app_driver import models_loaded, replies_done

from engines.remote.server import ad_hoc_server
from tests.engines.remote.fake_server import FakeServer, chunk, serve, stream
from widgets.chat_pane import ChatPane, ReplyView
from widgets.composer import Composer
from workbench.app import ZhbenchApp
from workbench.session.config import Config

SIZE = (150, 40)


@pytest.fixture
def fake_server() -> Iterator[FakeServer]:
    yield from serve(FakeServer())


async def test_a_server_model_fails_midway_in_its_pane_and_the_local_pane_finishes(
    make_app: Callable[..., ZhbenchApp], standin_dir: Callable[..., Path], fake_server: FakeServer, tmp_path: Path
) -> None:
    fake_server.chat = stream([chunk("一半"), '{"error": {"message": "worker died"}}'])
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
