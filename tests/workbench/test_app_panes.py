"""Two to four panes side by side (issue 27 item 5): the config's count, one message to every pane, each pane's
memory shown, one pane at a time with a switcher where they do not fit, added and removed, swapped, reopened."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from app_driver import models_loaded, replies_done, wait_until
from test_app import send
from textual.widgets import DataTable

from zhbench.engines.api import ReplyStream
from zhbench.engines.registry import load_engine
from zhbench.widgets.chat_pane import ChatPane, ReplyView
from zhbench.widgets.gpu_meter import GpuMeter
from zhbench.widgets.pane_switcher import PaneSwitcher
from zhbench.widgets.question import QuestionDialog
from zhbench.workbench.app import ZhbenchApp
from zhbench.workbench.screens.arena import ArenaScreen
from zhbench.workbench.screens.sessions import SessionsScreen
from zhbench.workbench.session.arena.rounds import Contender
from zhbench.workbench.session.bench import Bench
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


async def test_at_80x24_four_panes_show_one_at_a_time_and_every_reply_can_be_seen_by_switching(
    make_app: Callable[..., ZhbenchApp], four_models: dict[str, str]
) -> None:
    app = make_app(preload=four_models)
    async with app.run_test(size=(80, 24)) as pilot:
        await models_loaded(app, "a", "b", "c", "d")
        switcher = app.query_one(PaneSwitcher)
        await wait_until(lambda: switcher.display, what="the pane switcher")
        assert [pane.display for pane in app.query(ChatPane)] == [True, False, False, False]
        await send(pilot, app, "你好")  # Enter sends to every pane, shown or not
        await replies_done(app)
        for pane in "abcd":
            widget = app.query_one(f"#pane-{pane}", ChatPane)
            await wait_until(lambda widget=widget: widget.display and widget.region.width > 40, what=f"pane {pane}")
            assert [p.pane for p in app.query(ChatPane) if p.display] == [pane]
            assert f"[{pane.upper()}]" in str(switcher.content)
            reply = widget.query(ReplyView).last()
            assert reply.text == app.bench.pane(pane).history[-1]["content"] and reply.region.height > 0
            await pilot.press("ctrl+o")
        assert app.bench_screen.active_pane == "a"  # round again
        await pilot.resize_terminal(200, 40)  # wide enough: side by side again, no switcher
        await wait_until(lambda: all(pane.display for pane in app.query(ChatPane)), what="four panes side by side")
        assert not switcher.display


async def test_a_pane_is_added_and_the_last_one_removed_asked_first_when_it_holds_a_conversation(
    make_app: Callable[..., ZhbenchApp], four_models: dict[str, str]
) -> None:
    app = make_app(preload={"a": four_models["a"]})
    async with app.run_test(size=WIDE) as pilot:
        await models_loaded(app, "a")
        palette = {title: run for title, _, run in app.bench_screen.palette_commands()}
        await palette["Add pane"]()
        assert app.bench.names == ["a", "b", "c"] and app.bench_screen.active_pane == "c"
        palette = {title: run for title, _, run in app.bench_screen.palette_commands()}  # now one to remove
        app.bench_screen.load_model("c", four_models["c"], "third")
        await models_loaded(app, "c")
        await send(pilot, app, "你好")
        await replies_done(app)
        assert [m["role"] for m in app.bench.pane("c").history] == ["user", "assistant"]
        palette["Remove pane"]()  # C holds a conversation: asked first
        await wait_until(lambda: isinstance(app.screen, QuestionDialog), what="the question")
        await pilot.press("escape")
        assert app.bench.names == ["a", "b", "c"]
        palette["Remove pane"]()
        await wait_until(lambda: isinstance(app.screen, QuestionDialog), what="the question")
        await pilot.press("enter")  # Remove, the first choice, has the focus
        await wait_until(lambda: app.bench.names == ["a", "b"], what="C removed")
        await wait_until(lambda: len(app.query(ChatPane)) == 2, what="its pane gone")
        palette["Remove pane"]()  # two is the fewest
        assert app.bench.names == ["a", "b"]
        session = read_session(app.bench.transcript.path)
        assert [m.content for m in session.messages if m.pane == "c" and m.role == "user"] == ["你好"]


async def test_swap_exchanges_the_active_pane_and_the_next(
    make_app: Callable[..., ZhbenchApp], four_models: dict[str, str]
) -> None:
    app = make_app(preload={pane: four_models[pane] for pane in "abc"})
    async with app.run_test(size=WIDE) as pilot:
        await models_loaded(app, "a", "b", "c")
        labels = [app.bench.pane(pane).label for pane in "abc"]
        await pilot.press("ctrl+o")  # B active
        await pilot.press("f4")
        assert [app.bench.pane(pane).label for pane in "abc"] == [labels[0], labels[2], labels[1]]
        assert labels[2] in str(app.query_one("#pane-b", ChatPane).border_title)


async def test_a_session_with_an_added_pane_reopens_in_three_panes(
    make_app: Callable[..., ZhbenchApp], four_models: dict[str, str], tmp_path: Path
) -> None:
    folder = tmp_path / "transcripts"
    bench = Bench(folder)
    assert bench.add_pane() == "c"  # added during the session
    for pane in "abc":
        generation = bench.begin_load(pane, pane)
        assert generation is not None
        bench.model_loaded(pane, generation, load_engine(four_models[pane], device="cpu"), demo=False)
        bench.pane(pane).params = bench.pane(pane).params.with_overrides({"max_new_tokens": 3})  # type: ignore[union-attr]
    for job in bench.send("三个窗格", bench.names):
        reply = ReplyStream(job.engine, job.history, job.params, cancel=job.cancel).run()
        bench.reply_finished(job.pane, job.generation, reply)
    assert bench.transcript is not None
    bench.transcript.close()
    app = make_app(transcripts_folder=folder)
    async with app.run_test(size=WIDE) as pilot:
        await pilot.press("ctrl+g")
        await wait_until(lambda: isinstance(app.screen, SessionsScreen), what="the sessions screen")
        await wait_until(lambda: app.screen.query_one(DataTable).row_count == 1, what="the session")
        await pilot.press("enter")
        await wait_until(lambda: app.bench.names == ["a", "b", "c"], what="three panes")
        await models_loaded(app, "a", "b", "c")
        texts = [view.text for view in app.query_one("#pane-c", ChatPane).query("MessageView, ReplyView")]
        assert texts == [entry.text for entry in bench.pane("c").shown]


async def test_hiding_the_model_list_gives_four_panes_the_room_to_sit_side_by_side(
    make_app: Callable[..., ZhbenchApp], tmp_path: Path
) -> None:
    app = make_app(config=Config(path=tmp_path / "config.toml", panes=4))
    async with app.run_test(size=(150, 40)) as pilot:
        switcher = app.query_one(PaneSwitcher)
        await wait_until(lambda: switcher.display, what="one pane at a time beside the model list")
        app.query_one("#pane-a", ChatPane).focus()
        await pilot.press("ctrl+o")  # the focus leaves the pane hidden for the one shown
        await wait_until(lambda: app.bench_screen.active_pane == "b" and app.focused is app.query_one("#pane-b"))
        await pilot.press("f9")
        await wait_until(lambda: all(pane.display for pane in app.query(ChatPane)), what="four panes side by side")
        assert not switcher.display


async def test_the_arena_stays_two_panes_whatever_the_benchs_count(
    make_app: Callable[..., ZhbenchApp], four_models: dict[str, str], tmp_path: Path
) -> None:
    pool = [Contender(four_models["a"]), Contender(four_models["b"])]
    app = make_app(config=Config(path=tmp_path / "config.toml", panes=4), arena_pool=pool)
    async with app.run_test(size=WIDE):
        await wait_until(lambda: isinstance(app.screen, ArenaScreen), what="the arena")
        arena = app.screen
        assert isinstance(arena, ArenaScreen)
        assert arena.bench.names == ["a", "b"] and len(arena.query(ChatPane)) == 2
        assert not {"Add pane", "Remove pane"} & {title for title, _, _ in arena.palette_commands()}
        assert app.bench.names == ["a", "b", "c", "d"]  # the bench under it keeps its four
