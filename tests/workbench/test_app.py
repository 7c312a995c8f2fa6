"""The real app, driven headless with tiny stand-ins in both panes."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from app_driver import models_loaded, replies_done, wait_until
from textual import events
from textual.content import Content
from textual.widgets import Static

from zhbench.engines.registry import load_engine, write_standin
from zhbench.plain.redraw import FLUSH_INTERVAL_S
from zhbench.plain.safe_text import literal_markdown
from zhbench.widgets.chat_pane import ChatPane, MessageView, ReplyView
from zhbench.widgets.composer import Composer
from zhbench.widgets.gpu_meter import GpuMeter
from zhbench.widgets.question import QuestionDialog
from zhbench.workbench.app import ZhbenchApp
from zhbench.workbench.screens.bench import BenchScreen
from zhbench.workbench.session.config import Config, load_config
from zhbench.workbench.session.transcripts import read_session

SIZE = (150, 40)


def transcript(app: ZhbenchApp) -> list[dict[str, object]]:
    assert app.bench.transcript is not None
    return [json.loads(line) for line in app.bench.transcript.path.read_text(encoding="utf-8").splitlines()]


async def send(pilot: object, app: ZhbenchApp, text: str, key: str = "enter") -> None:
    composer = app.query_one(Composer)
    composer.focus()
    composer.text = text
    await pilot.press(key)  # type: ignore[attr-defined]


@pytest.fixture
def two_long_talkers(standin_dir: Callable[..., Path]) -> dict[str, str]:
    """Two stand-ins with no context limit, so a reply goes on until it is stopped."""
    return {"a": str(standin_dir("chatyuan")), "b": str(standin_dir("chatyuan", "safetensors"))}


@pytest.fixture
def two_models(standin_dir: Callable[..., Path]) -> dict[str, str]:
    return {"a": str(standin_dir("gpt2-dialogbot")), "b": str(standin_dir("dialogpt-zh"))}


async def test_one_message_streams_into_both_panes_and_both_replies_land_in_the_transcript(
    make_app: Callable[..., ZhbenchApp], two_models: dict[str, str]
) -> None:
    app = make_app(preload=two_models)
    async with app.run_test(size=SIZE) as pilot:
        await models_loaded(app, "a", "b")
        await send(pilot, app, "你好，今天天气怎么样？")
        await replies_done(app)
        for pane in "ab":
            state = app.bench.pane(pane)
            assert [m["role"] for m in state.history] == ["user", "assistant"]
            assert state.history[1]["content"]
            view = app.query_one(f"#pane-{pane}", ChatPane).query(ReplyView).last()
            assert view.text == state.history[1]["content"]
            assert "tok/s" in str(view.content)  # the stats line ends the reply
        records = transcript(app)
    assert records[0]["type"] == "session"
    assert records[0]["panes"]["a"]["family"] == "gpt2-dialogbot"
    assert records[0]["panes"]["b"]["family"] == "dialogpt-zh"
    session = read_session(app.bench.transcript.path)
    replies = [m for m in session.messages if m.role == "assistant"]
    assert sorted(m.pane for m in replies) == ["a", "b"]
    for reply in replies:
        assert reply.partial is False
        assert reply.content == app.bench.pane(reply.pane).history[1]["content"]
        assert reply.stats["new_tokens"] >= 1 and reply.params["seed"] is not None
    users = [m for m in session.messages if m.role == "user"]
    assert [u.content for u in users] == ["你好，今天天气怎么样？"] * 2


async def test_the_active_pane_key_sends_to_one_pane_only(
    make_app: Callable[..., ZhbenchApp], two_models: dict[str, str]
) -> None:
    app = make_app(preload=two_models)
    async with app.run_test(size=SIZE) as pilot:
        await models_loaded(app, "a", "b")
        await pilot.press("ctrl+o")  # B becomes the active pane
        await send(pilot, app, "只问B", key="ctrl+t")
        await replies_done(app)
        assert app.bench.pane("a").history == []
        assert [m["content"] for m in app.bench.pane("b").history[:1]] == ["只问B"]


async def test_escape_stops_both_replies_and_keeps_them_marked_partial(
    make_app: Callable[..., ZhbenchApp], two_long_talkers: dict[str, str]
) -> None:
    app = make_app(preload=two_long_talkers)
    async with app.run_test(size=SIZE) as pilot:
        await models_loaded(app, "a", "b")
        for state in app.bench.panes:  # long replies, so there is time to stop them
            state.params = state.params.with_overrides({"max_new_tokens": 100_000})
        await send(pilot, app, "讲个很长的故事")
        await wait_until(lambda: all(len(s.reply.text) > 0 for s in app.bench.panes if s.reply), what="text")
        await pilot.press("escape")
        await replies_done(app)
        session = read_session(app.bench.transcript.path)
        for pane in "ab":
            view = app.query_one(f"#pane-{pane}", ChatPane).query(ReplyView).last()
            assert "[stopped]" in str(view.content)
            reply = next(m for m in session.messages if m.pane == pane and m.role == "assistant")
            assert reply.partial is True and reply.stats["stop_reason"] == "cancelled"
            assert 0 < reply.stats["new_tokens"] < 100_000
            assert reply.content == app.bench.pane(pane).history[-1]["content"]


async def test_escape_in_a_focused_pane_stops_only_that_pane(
    make_app: Callable[..., ZhbenchApp], two_long_talkers: dict[str, str]
) -> None:
    app = make_app(preload=two_long_talkers)
    async with app.run_test(size=SIZE) as pilot:
        await models_loaded(app, "a", "b")
        app.bench.pane("a").params = app.bench.pane("a").params.with_overrides({"max_new_tokens": 100_000})
        app.bench.pane("b").params = app.bench.pane("b").params.with_overrides({"max_new_tokens": 100_000})
        await send(pilot, app, "两边都说很久")
        pane_a = app.bench.pane("a")
        await wait_until(lambda: pane_a.reply is not None and pane_a.reply.text != "", what="text")
        app.query_one("#pane-a", ChatPane).focus()
        await pilot.press("escape")
        await wait_until(lambda: not app.bench.pane("a").busy, what="A to stop")
        assert app.bench.pane("b").busy  # B goes on
        app.query_one(Composer).focus()
        await pilot.press("escape")
        await replies_done(app)


async def test_a_broken_model_folder_in_one_pane_leaves_the_other_working(
    make_app: Callable[..., ZhbenchApp], standin_dir: Callable[..., Path], tmp_path: Path
) -> None:
    broken = tmp_path / "broken-model"
    broken.mkdir()
    (broken / "config.json").write_text("{not json", encoding="utf-8")
    app = make_app(preload={"a": str(broken), "b": str(standin_dir("gpt2-dialogbot"))})
    async with app.run_test(size=SIZE) as pilot:
        await models_loaded(app, "b")
        await wait_until(lambda: app.bench.pane("a").loading is None, what="A's load to fail")
        status = app.query_one("#pane-a", ChatPane).query_one(".pane-status")
        assert "could not load" in str(status.content) and "config.json: unreadable JSON" in str(status.content)
        assert status.has_class("error")
        await send(pilot, app, "还在吗")
        await replies_done(app)
        assert app.bench.pane("a").engine is None and app.bench.pane("a").history == []
        assert app.bench.pane("b").history[-1]["role"] == "assistant"


async def test_markup_escapes_and_control_characters_are_shown_literally(
    make_app: Callable[..., ZhbenchApp], two_models: dict[str, str]
) -> None:
    nasty = "[bold red]不是粗体[/] [/] [link=x]y \x1b[31m红\x1b[0m \x07响 \x9b2J"
    app = make_app(preload=two_models)
    async with app.run_test(size=SIZE) as pilot:
        await models_loaded(app, "a", "b")
        await send(pilot, app, nasty)
        await replies_done(app)
        view = app.query_one("#pane-a", ChatPane).query(MessageView).first()
        shown = view.content
        assert str(shown) == "[bold red]不是粗体[/] [/] [link=x]y \\x1b[31m红\\x1b[0m \\x07响 \\x9b2J"
        assert not shown.spans and not shown.style  # nothing was styled
        assert app.bench.pane("a").history[0]["content"] == nasty  # the model gets what was typed


async def test_pasted_and_typed_chinese_arrive_intact(
    make_app: Callable[..., ZhbenchApp], two_models: dict[str, str]
) -> None:
    app = make_app(preload=two_models)
    async with app.run_test(size=SIZE) as pilot:
        await models_loaded(app, "a", "b")
        composer = app.query_one(Composer)
        composer.focus()
        app.post_message(events.Paste("第一行，粘贴的。\n第二行：“引号”"))  # as the terminal driver delivers it
        await pilot.pause()
        await pilot.press("ctrl+j")  # the newline key that every terminal passes through
        await pilot.press(*"输入法")
        assert composer.text == "第一行，粘贴的。\n第二行：“引号”\n输入法"
        await pilot.press("enter")
        await replies_done(app)
        assert app.bench.pane("a").history[0]["content"] == "第一行，粘贴的。\n第二行：“引号”\n输入法"
        assert composer.text == ""


async def test_a_reply_that_fails_midway_is_kept_partial_and_the_other_pane_finishes(
    make_app: Callable[..., ZhbenchApp], two_models: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    app = make_app(preload=two_models)
    async with app.run_test(size=SIZE) as pilot:
        await models_loaded(app, "a", "b")
        engine = app.bench.pane("a").engine
        real_source = engine.token_source

        def failing_source(*args: object) -> Iterator[int]:  # the model crashes after three tokens
            for count, token in enumerate(real_source(*args)):
                if count == 3:
                    raise RuntimeError("CUDA error: device-side assert triggered")
                yield token

        monkeypatch.setattr(engine, "token_source", failing_source)
        app.bench.pane("a").params = app.bench.pane("a").params.with_overrides({"max_new_tokens": 50})
        await send(pilot, app, "你好")
        await replies_done(app)
        view = app.query_one("#pane-a", ChatPane).query(ReplyView).last()
        assert "device-side assert" in str(view.content)
        reply_a = next(m for m in read_session(app.bench.transcript.path).messages if m.id.startswith("a-1-2"))
        assert reply_a.partial is True and "device-side assert" in reply_a.error
        assert reply_a.stats["new_tokens"] == 3
        assert app.bench.pane("a").history == [{"role": "user", "content": "你好"}]  # not fed back to the model
        assert app.bench.pane("b").history[-1]["role"] == "assistant"
        # The pane is usable again.
        monkeypatch.setattr(engine, "token_source", real_source)
        await send(pilot, app, "再试一次", key="ctrl+t")
        await replies_done(app)
        assert app.bench.pane("a").history[-1]["role"] == "assistant"


async def test_regenerate_clear_and_swap(make_app: Callable[..., ZhbenchApp], two_models: dict[str, str]) -> None:
    app = make_app(preload=two_models)
    async with app.run_test(size=SIZE) as pilot:
        await models_loaded(app, "a", "b")
        for state in app.bench.panes:
            state.params = state.params.with_overrides({"seed": None})
        await send(pilot, app, "你好")
        await replies_done(app)
        first = app.bench.pane("a").shown[-1].record_id
        await pilot.press("ctrl+r")
        await replies_done(app)
        pane_a = app.query_one("#pane-a", ChatPane)
        assert len(pane_a.query(ReplyView)) == 1  # the new version replaced the old one on screen
        assert [m["role"] for m in app.bench.pane("a").history] == ["user", "assistant"]
        regenerated = [m for m in read_session(app.bench.transcript.path).messages if m.regenerates == first]
        assert len(regenerated) == 1 and regenerated[0].pane == "a"

        families = {p: app.bench.pane(p).engine.family for p in "ab"}
        histories = {p: list(app.bench.pane(p).history) for p in "ab"}
        await pilot.press("f4")
        assert app.bench.pane("a").engine.family == families["b"] and app.bench.pane("b").engine.family == families["a"]
        assert app.bench.pane("a").history == histories["b"]
        assert "dialogpt-zh" in str(pane_a.query_one(".pane-header").content)
        assert [v.text for v in pane_a.query(MessageView)] == ["你好"]

        await pilot.press("ctrl+l")
        await pilot.press("enter")  # the question's first answer: clear
        assert app.bench.pane("a").history == [] and app.bench.pane("b").history == []
        assert not pane_a.query(MessageView)
        kinds = [r["type"] for r in transcript(app)]
        assert kinds.count("clear") == 2 and kinds.count("model") == 2


async def test_regenerated_replies_are_browsed_from_the_composer_and_the_one_shown_is_carried_on(
    make_app: Callable[..., ZhbenchApp], two_models: dict[str, str]
) -> None:
    """Issue 18, item 11: Ctrl+R's earlier reply could not be seen again."""
    app = make_app(preload=two_models)
    async with app.run_test(size=SIZE) as pilot:
        await models_loaded(app, "a", "b")
        await send(pilot, app, "你好")
        await replies_done(app)
        first = {p: app.bench.pane(p).shown[-1] for p in "ab"}
        await pilot.press("ctrl+r")  # from the composer: both panes
        await replies_done(app)
        views = {p: app.query_one(f"#pane-{p}", ChatPane).query(ReplyView) for p in "ab"}
        assert all(len(views[p]) == 1 and "reply 2/2 (alt+← alt+→)" in str(views[p].last().content) for p in "ab")
        composer = app.query_one(Composer)
        composer.text = "草稿"
        composer.move_cursor((0, 1))
        await pilot.press("alt+left")  # the composer's text and cursor stay as they are
        assert (composer.text, composer.cursor_location) == ("草稿", (0, 1))
        for pane in "ab":
            assert "reply 1/2" in str(views[pane].last().content) and views[pane].last().text == first[pane].text
            assert app.bench.pane(pane).history[-1]["content"] == first[pane].fed_back
        await pilot.press("alt+left")
        assert any(n.message.startswith("No earlier version of the last reply") for n in app._notifications)

        await send(pilot, app, "接着说", key="ctrl+t")  # pane A goes on from the version on show
        await replies_done(app)
        assert app.bench.pane("a").history[1]["content"] == first["a"].fed_back
        assert "reply" not in str(app.query_one("#pane-a", ChatPane).query(ReplyView).last().content)
        app.query_one("#pane-b", ChatPane).focus()
        palette = {title: command for title, _, command in app.bench_screen.palette_commands()}
        palette["Later reply version"]()  # B's last reply is still two versions (alt+right, from the palette)
        assert "reply 2/2" in str(views["b"].last().content)
        session = read_session(app.bench.transcript.path)
        chosen = [r.to_json()["reply"] for r in session.records if r.to_json()["type"] == "choice"]
        assert chosen == [first["a"].record_id, first["b"].record_id, app.bench.pane("b").shown[-1].record_id]


async def test_the_reply_version_keys_are_remapped_from_the_config(
    make_app: Callable[..., ZhbenchApp], two_models: dict[str, str], tmp_path: Path
) -> None:
    config = Config(path=tmp_path / "config.toml", keymap={"earlier-reply": "f11", "later-reply": "f12"})
    app = make_app(preload={"a": two_models["a"]}, config=config)
    async with app.run_test(size=SIZE) as pilot:
        await models_loaded(app, "a")
        await send(pilot, app, "你好", key="ctrl+t")
        await replies_done(app)
        await pilot.press("ctrl+r")
        await replies_done(app)
        view = app.query_one("#pane-a", ChatPane).query(ReplyView).last()
        assert "reply 2/2 (f11 f12)" in str(view.content)
        await pilot.press("f11")
        assert "reply 1/2 (f11 f12)" in str(view.content)


async def test_clearing_a_conversation_asks_first_and_an_empty_pane_is_not_asked_about(
    make_app: Callable[..., ZhbenchApp], two_models: dict[str, str]
) -> None:
    """Issue 18, item 11: Ctrl+L cleared without a word."""
    app = make_app(preload=two_models)
    async with app.run_test(size=SIZE) as pilot:
        await models_loaded(app, "a", "b")
        await send(pilot, app, "只问A", key="ctrl+t")
        await replies_done(app)
        app.query_one("#pane-b", ChatPane).focus()
        await pilot.press("ctrl+l")  # B has nothing to lose: cleared at once
        assert isinstance(app.screen, BenchScreen)
        app.query_one(Composer).focus()
        await pilot.press("ctrl+l")
        dialog = app.screen
        assert isinstance(dialog, QuestionDialog)
        shown = str(dialog.query_one(".title").content) + str(dialog.query(Static)[1].content)
        assert "Clear the conversation of pane A?" in shown and "stays in this session's transcript" in shown
        await pilot.press("escape")
        assert app.screen is app.bench_screen and len(app.bench.pane("a").history) == 2
        await pilot.press("ctrl+l")
        await pilot.click("#question-cancel")
        assert len(app.bench.pane("a").history) == 2 and app.query_one("#pane-a", ChatPane).query(MessageView)
        await pilot.press("ctrl+l")
        await pilot.press("enter")
        assert app.bench.pane("a").history == [] and not app.query_one("#pane-a", ChatPane).query(MessageView)
        assert [r["pane"] for r in transcript(app) if r["type"] == "clear"] == ["a"]  # B had nothing to clear


async def test_loading_into_a_talking_pane_asks_whether_the_new_model_carries_the_conversation_on(
    make_app: Callable[..., ZhbenchApp], two_models: dict[str, str], standin_dir: Callable[..., Path]
) -> None:
    """Issue 18, item 11: loading a model into a pane wiped its conversation without a word."""
    app = make_app(preload={"a": two_models["a"]})
    screen = app.bench_screen
    chatyuan = str(standin_dir("chatyuan"))
    async with app.run_test(size=SIZE) as pilot:
        await models_loaded(app, "a")
        await send(pilot, app, "你好", key="ctrl+t")
        await replies_done(app)
        history = list(app.bench.pane("a").history)
        screen.request_load("a", chatyuan, "[b]小元[/b]")
        await pilot.pause()
        dialog = app.screen
        assert isinstance(dialog, QuestionDialog)
        assert "Load [b]小元[/b] into pane A?" in str(dialog.query_one(".title").content)  # as written
        await pilot.press("escape")
        assert app.bench.pane("a").loading is None and app.bench.pane("a").engine.family == "gpt2-dialogbot"

        screen.request_load("a", chatyuan, "[b]小元[/b]")
        await pilot.pause()
        await pilot.press("enter")  # the first answer: carry it on
        await models_loaded(app, "a")
        await pilot.pause()
        assert app.bench.pane("a").engine.family == "chatyuan" and app.bench.pane("a").history == history
        pane_a = app.query_one("#pane-a", ChatPane)
        assert [v.text for v in pane_a.query(MessageView)] == ["你好"] and len(pane_a.query(ReplyView)) == 1
        await send(pilot, app, "接着说", key="ctrl+t")
        await replies_done(app)
        assert app.bench.pane("a").history[:2] == history

        screen.request_load("a", two_models["a"], "dialogbot")
        await pilot.pause()
        await pilot.press("tab", "enter")  # the second answer: a new conversation
        await models_loaded(app, "a")
        await pilot.pause()
        assert app.bench.pane("a").engine.family == "gpt2-dialogbot" and app.bench.pane("a").history == []
        assert not pane_a.query(MessageView)
        screen.request_load("a", chatyuan, "小元")  # an empty pane: nothing to ask
        await pilot.pause()
        assert app.screen is screen
        await models_loaded(app, "a")
        changes = [r.get("kept_conversation", False) for r in transcript(app) if r["type"] == "model"]
        assert changes == [True, False, False]


async def test_replies_carried_over_to_another_model_name_the_model_that_wrote_them_in_the_pane_and_exports(
    make_app: Callable[..., ZhbenchApp], two_models: dict[str, str], standin_dir: Callable[..., Path], tmp_path: Path
) -> None:
    """Issue 25 item 2, issue 27 item 6: after "Carry it on", the earlier replies looked like the new model's."""
    app = make_app(preload={"a": two_models["a"]}, exports_folder=tmp_path / "exports")
    async with app.run_test(size=SIZE) as pilot:
        await models_loaded(app, "a")
        await send(pilot, app, "你好", key="ctrl+t")
        await replies_done(app)
        first = app.bench.pane("a").label
        app.bench_screen.load_model("a", str(standin_dir("chatyuan")), "小元", keep_conversation=True)
        await models_loaded(app, "a")
        await send(pilot, app, "接着说", key="ctrl+t")
        await replies_done(app)
        await pilot.pause()
        second = app.bench.pane("a").label
        assert first and second and first != second
        earlier, later = (str(view.content) for view in app.query_one("#pane-a", ChatPane).query(ReplyView))
        assert f"by {first} · " in earlier  # the carried-over reply names its writer
        assert "by " not in later  # the pane's own model: its header names it
        app.bench_screen.action_export()
        markdown = (tmp_path / "exports" / f"{app.bench.transcript.session_id}.md").read_text(encoding="utf-8")
        replies = re.findall(r"^\*\*A · (.+?)\*\*:", markdown, flags=re.MULTILINE)
        assert replies == [literal_markdown(first), literal_markdown(second)]


async def test_parameters_edited_in_the_dialog_are_used_and_checked(
    make_app: Callable[..., ZhbenchApp], two_models: dict[str, str]
) -> None:
    app = make_app(preload=two_models)
    async with app.run_test(size=SIZE) as pilot:
        await models_loaded(app, "a", "b")
        await pilot.press("f2")
        dialog = app.screen
        dialog.query_one("#param-temperature").value = "0"
        await pilot.click("#params-apply")
        assert "temperature must be above 0" in str(dialog.query_one(".problem").content)
        dialog.query_one("#param-temperature").value = "0.5"
        dialog.query_one("#param-max_new_tokens").value = "7"
        dialog.query_one("#param-seed").value = "1234"
        dialog.query_one("#param-seed").focus()
        await pilot.press("enter")  # Enter in any field applies
        assert app.screen is not dialog
        params = app.bench.pane("a").params
        assert (params.temperature, params.max_new_tokens, params.seed) == (0.5, 7, 1234)
        assert "temp 0.5" in str(app.query_one("#pane-a", ChatPane).query_one(".pane-header").content)
        await send(pilot, app, "你好")
        await replies_done(app)
        reply = [m for m in read_session(app.bench.transcript.path).messages if m.pane == "a"][-1]
        assert reply.params["seed"] == 1234 and reply.stats["new_tokens"] <= 7
        # The upstream defaults are the first preset; picking it keeps the seed (no preset sets one).
        await pilot.press("f2")
        presets = app.screen.query_one("#params-preset")
        assert presets.selection is None  # "custom": the edited settings match no preset
        presets.value = "default"
        await pilot.pause()
        app.screen.query_one("#param-top_k").focus()
        await pilot.press("enter")
        assert app.bench.pane("a").params == app.bench.pane("a").engine.default_params().with_overrides({"seed": 1234})


async def test_streaming_redraws_in_batches_not_once_per_token(
    make_app: Callable[..., ZhbenchApp], two_models: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    app = make_app(preload=two_models)
    async with app.run_test(size=SIZE) as pilot:
        await models_loaded(app, "a", "b")
        pane_b = app.bench.pane("b")
        pane_b.params = pane_b.params.with_overrides({"max_new_tokens": 400, "greedy": True})
        engine = pane_b.engine
        real_source = engine.token_source

        def steady_source(*args: object) -> Iterator[int]:  # a model that streams for a few seconds
            for token in real_source(*args):
                time.sleep(0.005)
                yield token

        monkeypatch.setattr(engine, "token_source", steady_source)
        await pilot.press("ctrl+o")
        await send(pilot, app, "你好", key="ctrl+t")
        await replies_done(app)
        view = app.query_one("#pane-b", ChatPane).query(ReplyView).last()
        stats = read_session(app.bench.transcript.path).messages[-1].stats
        assert stats["new_tokens"] > 50
        # At most one redraw per tick of the redraw clock, however many tokens came in between.
        assert 1 <= view.redraws <= stats["total_s"] / FLUSH_INTERVAL_S + 2
        assert view.redraws < stats["new_tokens"]
        # Most redraws happen in place: the screen is laid out again only when the reply needs more lines,
        # and then it takes the lines it will need for a while. The finished reply keeps no spare lines.
        text_lines = view.content_size.height
        assert view.redraws > 10 and text_lines > 10
        assert view.layouts <= min(view.redraws, text_lines) / 3
        assert view.styles.min_height is None


async def test_the_meter_without_a_gpu_shows_ram_and_each_panes_model(
    make_app: Callable[..., ZhbenchApp], two_models: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import pynvml

    def no_driver() -> None:
        raise pynvml.NVMLError(pynvml.NVML_ERROR_LIBRARY_NOT_FOUND)

    monkeypatch.setattr(pynvml, "nvmlInit", no_driver)
    app = make_app(preload=two_models)
    async with app.run_test(size=SIZE):
        await models_loaded(app, "a", "b")
        meter = app.query_one(GpuMeter)
        await wait_until(lambda: meter.reading is not None and len(meter.reading.panes) == 2, what="a reading")
        text = str(meter.content)
        assert "no NVIDIA GPU (no NVIDIA driver found)" in text and "RAM" in text
        expected_a = load_engine(two_models["a"], device="cpu").describe().weight_bytes
        assert meter.reading.panes[0].weight_bytes == expected_a and "A:" in text and "on cpu" in text


def test_the_nvml_reader_turns_every_failure_into_a_reading(monkeypatch: pytest.MonkeyPatch) -> None:
    import pynvml

    from zhbench.workbench.session.memory import NvmlReader, read_memory

    monkeypatch.setattr(pynvml, "nvmlInit", lambda: None)
    monkeypatch.setattr(pynvml, "nvmlDeviceGetCount", lambda: 2)
    monkeypatch.setattr(pynvml, "nvmlDeviceGetHandleByIndex", lambda i: i)
    monkeypatch.setattr(pynvml, "nvmlDeviceGetName", lambda h: b"NVIDIA H200")

    class Info:
        used, total = 3 * 2**30, 141 * 2**30

    def memory_info(handle: int) -> Info:
        if handle == 1:
            raise pynvml.NVMLError(pynvml.NVML_ERROR_GPU_IS_LOST)
        return Info()

    monkeypatch.setattr(pynvml, "nvmlDeviceGetMemoryInfo", memory_info)
    reading = read_memory(NvmlReader(), [])
    assert reading.gpu_note is None
    assert [(g.name, g.used_bytes) for g in reading.gpus] == [("NVIDIA H200", 3 * 2**30), ("NVIDIA H200", None)]
    from zhbench.widgets.gpu_meter import meter_text

    assert "GPU1 NVIDIA H200: unreadable" in str(meter_text(reading))


async def test_the_theme_switch_is_remembered(make_app: Callable[..., ZhbenchApp], tmp_path: Path) -> None:
    config_file = tmp_path / "config.toml"
    config_file.write_text("model_dirs = []\n\n[params.chatyuan]\ntemperature = 0.9\n", encoding="utf-8")
    app = make_app(config=load_config(config_file))
    async with app.run_test(size=SIZE) as pilot:
        assert app.theme == "zhbench-dark"
        app.theme = "zhbench-light"
        await pilot.pause()
    assert load_config(config_file).theme == "zhbench-light"
    assert load_config(config_file).params == {"chatyuan": {"temperature": 0.9}}  # the rest is kept
    again = make_app(config=load_config(config_file))
    async with again.run_test(size=SIZE):
        assert again.theme == "zhbench-light"
        assert again.current_theme.dark is False


async def test_a_broken_config_gives_a_message_and_the_defaults(
    make_app: Callable[..., ZhbenchApp], tmp_path: Path
) -> None:
    config_file = tmp_path / "config.toml"
    config_file.write_text('theme = "zhbench-light"\n[keymap\n', encoding="utf-8")
    app = make_app(config=load_config(config_file))
    async with app.run_test(size=SIZE):
        assert app.theme == "zhbench-dark"
        messages = [n.message for n in app._notifications]
        assert any("config.toml" in m and "using the defaults" in m for m in messages)


async def test_keys_are_remapped_from_the_config(
    make_app: Callable[..., ZhbenchApp], two_models: dict[str, str], tmp_path: Path
) -> None:
    config = Config(path=tmp_path / "config.toml", keymap={"send-active": "ctrl+g"})
    app = make_app(preload=two_models, config=config)
    async with app.run_test(size=SIZE) as pilot:
        await models_loaded(app, "a", "b")
        await send(pilot, app, "映射", key="ctrl+g")
        await replies_done(app)
        assert app.bench.pane("a").history[0]["content"] == "映射" and app.bench.pane("b").history == []


async def test_export_from_the_app_writes_markdown_and_json(
    make_app: Callable[..., ZhbenchApp], two_models: dict[str, str], user_dirs: dict[str, Path]
) -> None:
    app = make_app(preload=two_models)
    async with app.run_test(size=SIZE) as pilot:
        await models_loaded(app, "a", "b")
        await send(pilot, app, "导出测试")
        await replies_done(app)
        await pilot.press("ctrl+s")
        session_id = app.bench.transcript.session_id
        replies = {p: app.bench.pane(p).history[-1]["content"] for p in "ab"}
    exported = user_dirs["data"] / "zhbench" / "exports"
    markdown = (exported / f"{session_id}.md").read_text(encoding="utf-8")
    assert "## Turn 1" in markdown and "> 导出测试" in markdown
    first_line = literal_markdown(replies["a"].split("\n")[0])  # a reply's text, as Markdown that renders as it
    assert markdown.index("**A · ") < markdown.index("**B · ") and first_line in markdown
    data = json.loads((exported / f"{session_id}.json").read_text(encoding="utf-8"))
    assert data["session"]["id"] == session_id
    assert {r["content"] for r in data["records"] if r.get("role") == "assistant"} == set(replies.values())


async def test_with_no_models_two_demo_models_are_offered_and_work(make_app: Callable[..., ZhbenchApp]) -> None:
    app = make_app(offer_demos=True)
    async with app.run_test(size=SIZE) as pilot:
        await models_loaded(app, "a", "b")
        for pane in "ab":
            header = str(app.query_one(f"#pane-{pane}", ChatPane).query_one(".pane-header").content)
            assert "DEMO · random weights" in header
        await send(pilot, app, "演示")
        await replies_done(app)
        assert all(app.bench.pane(p).history[-1]["role"] == "assistant" for p in "ab")
        assert read_session(app.bench.transcript.path).header.panes["a"].demo is True


async def test_a_model_from_the_list_loads_into_the_pane_asked_for(
    make_app: Callable[..., ZhbenchApp], standin_dir: Callable[..., Path], tmp_path: Path
) -> None:
    folder = tmp_path / "my-models"
    folder.mkdir()
    (folder / "tiny-chatyuan").symlink_to(standin_dir("chatyuan"))
    config = Config(path=tmp_path / "config.toml", model_dirs=[folder])
    app = make_app(config=config)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(lambda: any(r.source == "local" for r in app.rows), what="discovery")
        await pilot.click("#model-filter")
        await pilot.press(*"chatyuan tiny")
        await pilot.press("enter")  # to the table
        await pilot.press("b")
        await models_loaded(app, "b")
        assert app.bench.pane("b").engine.family == "chatyuan" and app.bench.pane("a").engine is None
        # a stand-in from make-tiny says what it is, as the demos do (issue 18, item 3)
        header = str(app.query_one("#pane-b", ChatPane).query_one(".pane-header").content)
        assert "stand-in · random weights" in header


@pytest.mark.slow
async def test_rwkv_and_eva_run_side_by_side_with_rwkv_commands_in_the_palette(
    make_app: Callable[..., ZhbenchApp], standin_dir: Callable[..., Path], tmp_path: Path
) -> None:
    rwkv = write_standin("rwkv4", tmp_path / "rwkv")
    config = Config(path=tmp_path / "config.toml", strategies={rwkv.name: "cpu bf16"})
    app = make_app(preload={"a": str(rwkv), "b": str(standin_dir("eva2"))}, config=config)
    async with app.run_test(size=SIZE) as pilot:
        await models_loaded(app, "a", "b")
        header_a = str(app.query_one("#pane-a", ChatPane).query_one(".pane-header").content)
        assert "rwkv4 · cpu bf16" in header_a  # the configured strategy, not the default
        assert "4 beams" in str(app.query_one("#pane-b", ChatPane).query_one(".pane-header").content)
        app.bench.pane("a").params = app.bench.pane("a").params.with_overrides({"max_new_tokens": 12})
        await send(pilot, app, "你好")
        await replies_done(app)
        await send(pilot, app, "再说一句")
        await replies_done(app)
        replies = [m for m in read_session(app.bench.transcript.path).messages if m.role == "assistant"]
        rwkv_turns = [m.stats["prompt_tokens"] for m in replies if m.pane == "a"]
        eva_turns = [m.stats["prompt_tokens"] for m in replies if m.pane == "b"]
        # Only the new message is fed (and the blank line closing the cut reply): not the init prompt again.
        whole_feed = app.bench.pane("a").engine.prompt_for([{"role": "user", "content": "x"}]).input_ids
        assert rwkv_turns[1] < 20 < len(whole_feed)
        assert eva_turns[1] > eva_turns[0]  # EVA re-encodes the whole context each turn, as upstream

        commands = [title for title, _, _ in app.bench_screen.palette_commands()]
        assert "Pane A: +reset" in commands and "Pane A: +gen TEXT" in commands
        assert not any(title.startswith("Pane B: +") for title in commands)
        app.bench_screen.run_chat_command("a", "+gen TEXT")
        assert app.query_one(Composer).text == "+gen " and app.bench_screen.active_pane == "a"
        app.query_one(Composer).text = ""
        app.bench_screen.run_chat_command("a", "+reset")
        await replies_done(app)
        assert app.bench.pane("a").history[-2:][0]["content"] == "+reset"
        assert app.bench.pane("b").history[-1]["role"] == "assistant" and len(app.bench.pane("b").history) == 4


async def test_an_invalid_rwkv_strategy_fails_in_its_pane_with_the_valid_forms(
    make_app: Callable[..., ZhbenchApp], tmp_path: Path
) -> None:
    rwkv = write_standin("rwkv4", tmp_path / "rwkv")
    config = Config(path=tmp_path / "config.toml", strategies={str(rwkv): "gpu fp64"})
    app = make_app(preload={"a": str(rwkv)}, config=config)
    async with app.run_test(size=SIZE):
        await wait_until(lambda: app.bench.pane("a").loading is None, what="the load to fail")
        status = str(app.query_one("#pane-a", ChatPane).query_one(".pane-status").content)
        assert "could not load" in status and "gpu fp64" in status and "cuda fp16" in status


SHARED_TEMPLATES = Path(__file__).resolve().parents[3] / "shared" / "data" / "chat" / "templates"
QWEN3_TEMPLATE = SHARED_TEMPLATES / "Qwen-Qwen3-0.6B.jinja"


@pytest.mark.skipif(not QWEN3_TEMPLATE.is_file(), reason="../shared/data/chat is absent")
async def test_a_system_prompt_and_thinking_switch_set_in_the_dialog_reach_the_template(
    make_app: Callable[..., ZhbenchApp], tmp_path: Path
) -> None:
    folder = write_standin("chat-template", tmp_path / "qwen3", options={"template": str(QWEN3_TEMPLATE)})
    app = make_app(preload={"a": str(folder)})
    async with app.run_test(size=SIZE) as pilot:
        await models_loaded(app, "a")
        # Applied untouched, the empty system prompt stays empty (it is text, not a missing value).
        await pilot.press("f2")
        dialog = app.screen
        await pilot.click("#params-apply")
        assert app.screen is not dialog, dialog.query_one(".problem").content
        assert app.bench.pane("a").params.system_prompt == ""

        await pilot.press("f2")
        dialog = app.screen
        assert dialog.query_one("#param-enable_thinking").value is True  # on by default: the template reads it
        dialog.query_one("#param-system_prompt").value = "你是一个简洁的助手。"
        await pilot.click("#param-enable_thinking")  # a switch, toggled off
        await pilot.click("#params-apply")
        assert app.screen is not dialog
        params = app.bench.pane("a").params
        assert (params.system_prompt, params.enable_thinking) == ("你是一个简洁的助手。", False)
        assert "enable_thinking off" in str(app.query_one("#pane-a", ChatPane).query_one(".pane-header").content)

        prompt = app.bench.pane("a").engine.prompt_for([{"role": "user", "content": "你好"}], params)
        assert prompt.text.startswith("<|im_start|>system\n你是一个简洁的助手。<|im_end|>\n")
        assert prompt.text.endswith("<|im_start|>assistant\n<think>\n\n</think>\n\n")  # Qwen3 with thinking off
        await send(pilot, app, "你好", "ctrl+t")
        await replies_done(app)
        reply = [m for m in read_session(app.bench.transcript.path).messages if m.pane == "a"][-1]
        assert reply.params["system_prompt"] == "你是一个简洁的助手。" and reply.params["enable_thinking"] is False


async def test_markup_in_a_model_path_and_a_config_value_shows_as_written(
    make_app: Callable[..., ZhbenchApp], tmp_path: Path
) -> None:
    folder = write_standin("gpt2-dialogbot", tmp_path / "[@click=app.quit]Q[b]")  # the title: its folder's name
    config = Config(path=tmp_path / "config.toml", theme="[reverse]inject[/]")
    app = make_app(config=config, preload={"a": str(folder)})
    async with app.run_test(size=SIZE) as pilot:
        await models_loaded(app, "a")
        await pilot.pause()
        pane = app.query_one("#pane-a", ChatPane)
        # the title as drawn: the name, literally, not a clickable "Q"
        assert Content.from_markup(pane.border_title).plain == f"A · {folder.name}"
        assert any(n.message.startswith("unknown theme '[reverse]inject[/]'") for n in app._notifications)
        assert all(not n.markup for n in app._notifications)  # shown as written


async def test_a_message_for_both_panes_goes_to_neither_while_one_still_replies(
    make_app: Callable[..., ZhbenchApp], two_long_talkers: dict[str, str]
) -> None:
    app = make_app(preload=two_long_talkers)
    async with app.run_test(size=SIZE) as pilot:
        await models_loaded(app, "a", "b")
        app.bench.pane("a").params = app.bench.pane("a").params.with_overrides({"max_new_tokens": 100_000})
        await send(pilot, app, "只问A", key="ctrl+t")  # pane A (the active one) replies at length
        await wait_until(lambda: app.bench.pane("a").busy, what="A replying")
        await send(pilot, app, "问两边")
        assert app.bench.pane("b").history == []  # B did not get it alone
        assert app.query_one(Composer).text == "问两边"  # kept, to send again
        assert any(n.message.startswith("Nothing sent: pane A is still replying") for n in app._notifications)
        await pilot.press("escape")
        await replies_done(app)
        for state in app.bench.panes:
            state.params = state.params.with_overrides({"max_new_tokens": 8})
        await send(pilot, app, "问两边")
        await replies_done(app)
        assert app.bench.pane("b").history[0]["content"] == "问两边"
        assert app.bench.pane("a").history[-2]["content"] == "问两边"


async def test_at_80_by_24_the_panes_come_first_and_the_list_is_one_key_away(
    make_app: Callable[..., ZhbenchApp], two_models: dict[str, str]
) -> None:
    app = make_app(preload=two_models)
    async with app.run_test(size=(80, 24)) as pilot:
        await models_loaded(app, "a", "b")
        await pilot.pause()
        models = app.query_one("#models")
        assert not models.display  # hidden below 110 columns
        assert all(app.query_one(f"#pane-{pane}", ChatPane).size.width >= 38 for pane in "ab")
        footer = "".join(re.findall(r"<text[^>]*>(.*?)</text>", app.export_screenshot())).replace("&#160;", " ")
        assert "f9" in footer and "Models" in footer  # the key that brings the list back is on screen
        await pilot.press("f9")
        assert models.display and models.size.width <= 36
        await send(pilot, app, "你好")
        await replies_done(app)


async def test_enter_right_after_fast_typing_sends_every_character_typed(
    make_app: Callable[..., ZhbenchApp], two_models: dict[str, str]
) -> None:
    """Keys from the terminal arrive faster than the composer takes them (tmux send-keys, a paste without
    bracketed-paste mode): Enter, a priority binding handled by the app at once, must still see every
    character typed before it, not the part the composer had taken so far."""
    app = make_app(preload=two_models)
    async with app.run_test(size=SIZE) as pilot:
        await models_loaded(app, "a", "b")
        app.query_one(Composer).focus()
        await pilot.pause()
        typed = "你好，第十次测试 hello"
        for character in typed:  # as the terminal driver posts them: all queued before any is handled
            app.post_message(events.Key(character, character))
        app.post_message(events.Key("enter", "\r"))
        await pilot.pause()
        await replies_done(app)
        assert app.query_one(Composer).text == ""
        assert [m["content"] for m in app.bench.pane("a").history if m["role"] == "user"] == [typed]
        assert [m["content"] for m in app.bench.pane("b").history if m["role"] == "user"] == [typed]
