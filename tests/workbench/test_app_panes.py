"""Two to four panes side by side: the config's count, one message to every pane, each pane's memory shown."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from app_driver import models_loaded, replies_done
from test_app import send

from zhbench.widgets.chat_pane import ChatPane, ReplyView
from zhbench.widgets.gpu_meter import GpuMeter
from zhbench.workbench.app import ZhbenchApp
from zhbench.workbench.session.config import Config
from zhbench.workbench.session.transcripts import read_session

WIDE = (200, 40)


@pytest.fixture
def four_models(standin_dir: Callable[..., Path]) -> dict[str, str]:
    families = ("gpt2-dialogbot", "dialogpt-zh", "gpt2-dialogbot", "dialogpt-zh")
    return {pane: str(standin_dir(family)) for pane, family in zip("abcd", families, strict=True)}


async def test_the_configs_pane_count_opens_that_many_panes(
    make_app: Callable[..., ZhbenchApp], tmp_path: Path
) -> None:
    app = make_app(config=Config(path=tmp_path / "config.toml", panes=3))
    async with app.run_test(size=WIDE):
        assert app.bench.names == ["a", "b", "c"] and len(app.query(ChatPane)) == 3


async def test_one_message_reaches_three_panes_and_the_meter_shows_each(
    make_app: Callable[..., ZhbenchApp], four_models: dict[str, str]
) -> None:
    three = {pane: four_models[pane] for pane in "abc"}
    app = make_app(preload=three)
    async with app.run_test(size=WIDE) as pilot:
        await models_loaded(app, "a", "b", "c")
        await send(pilot, app, "你好")
        await replies_done(app)
        for pane in "abc":
            view = app.query_one(f"#pane-{pane}", ChatPane).query(ReplyView).last()
            assert view.text == app.bench.pane(pane).history[-1]["content"]
        session = read_session(app.bench.transcript.path)
        assert sorted(session.header.panes) == ["a", "b", "c"]
        assert sorted(m.pane for m in session.messages if m.role == "assistant") == ["a", "b", "c"]
        meter = app.query_one(GpuMeter)
        await pilot.pause(1.5)  # the meter reads about once a second
        assert meter.reading is not None and [p.pane for p in meter.reading.panes] == ["a", "b", "c"]
        assert all(f"{pane}:" in str(meter.content) for pane in "ABC")
