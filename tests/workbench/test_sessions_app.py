"""The sessions screen in the real app: past sessions listed and filtered, one reopened and continued in its
own file, an arena round read-only, a model that is gone leaving its pane read-only (issue 27 item 1)."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from pathlib import Path

from app_driver import models_loaded, replies_done, wait_until
from textual.widgets import DataTable, Input

from zhbench.engines.api import ReplyStream
from zhbench.engines.registry import load_engine
from zhbench.widgets.chat_pane import FIRST_PAINT_VIEWS, ChatPane, MessageView, ReplyView
from zhbench.widgets.composer import Composer
from zhbench.widgets.question import QuestionDialog
from zhbench.workbench.app import ZhbenchApp
from zhbench.workbench.screens.sessions import PastArenaScreen, SessionsScreen
from zhbench.workbench.session.bench import Bench
from zhbench.workbench.session.records import MessageRecord, ModelRecord, PaneModel
from zhbench.workbench.session.transcripts import TranscriptWriter, read_session, session_files

SIZE = (150, 40)


def saved_session(folder: Path, models: dict[str, str], texts: list[str], *, arena: bool = False) -> Bench:
    """A session made as the app makes one: each text to both panes, then pane A's last reply regenerated."""
    bench = Bench(folder, arena=arena)
    for name, path in models.items():
        generation = bench.begin_load(name, Path(path).name)
        assert generation is not None
        bench.model_loaded(name, generation, load_engine(path, device="cpu"), demo=False)
        state = bench.pane(name)
        assert state.params is not None
        state.params = state.params.with_overrides({"max_new_tokens": 3, "seed": 5})

    def run(job: object) -> None:
        reply = ReplyStream(job.engine, job.history, job.params, cancel=job.cancel).run()  # type: ignore[attr-defined]
        bench.reply_finished(job.pane, job.generation, reply)  # type: ignore[attr-defined]

    for text in texts:
        for job in bench.send(text, bench.names):
            run(job)
    job = bench.regenerate("a")
    assert job is not None
    run(job)
    assert bench.transcript is not None
    bench.transcript.close()
    return bench


def pane_texts(app: ZhbenchApp, pane: str) -> list[str]:
    widget = app.screen.query_one(f"#pane-{pane}", ChatPane)
    return [view.text for view in widget.query("MessageView, ReplyView")]


async def open_sessions(app: ZhbenchApp, pilot: object, query: str = "") -> SessionsScreen:
    await pilot.press("ctrl+g")  # type: ignore[attr-defined]
    await wait_until(lambda: isinstance(app.screen, SessionsScreen), what="the sessions screen")
    screen = app.screen
    assert isinstance(screen, SessionsScreen)
    await wait_until(lambda: "session(s)" in str(screen.query_one("#sessions-note").content), what="the rows")
    if query:
        screen.query_one(Input).value = query
        await wait_until(lambda: f"containing {query!r}" in str(screen.query_one("#sessions-note").content))
    return screen


async def test_a_past_session_is_found_reopened_and_continued_in_its_own_file(
    make_app: Callable[..., ZhbenchApp], standin_dir: Callable[..., Path], tmp_path: Path
) -> None:
    folder = tmp_path / "transcripts"
    models = {"a": str(standin_dir("gpt2-dialogbot")), "b": str(standin_dir("dialogpt-zh"))}
    old = saved_session(folder, models, ["你好", "第二句话"])
    time.sleep(1.1)  # sessions are ordered by their start, to the second: two in one second could list either way
    saved_session(folder, models, ["别的会话"])
    app = make_app(transcripts_folder=folder)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_sessions(app, pilot)
        assert screen.query_one(DataTable).row_count == 2
        assert [row.first_message for row in screen.rows] == ["别的会话", "你好"]  # newest first
        assert (screen.rows[1].turns, screen.rows[1].arena) == (2, False)
        screen.query_one(Input).value = "第二句"
        await wait_until(lambda: screen.query_one(DataTable).row_count == 1, what="the filter")
        await pilot.press("enter")
        await models_loaded(app, "a", "b")
        assert app.screen is app.bench_screen
        for name in "ab":
            shown = [entry.text for entry in old.pane(name).shown]
            assert pane_texts(app, name) == shown  # every message and reply as it was
            assert app.bench.pane(name).params.max_new_tokens == 3  # the settings it had
        assert app.bench.pane("a").reply_version() == (2, 2)  # the regenerated reply's versions came back
        assert "reply 2/2" in str(app.query_one("#pane-a", ChatPane).query(ReplyView).last().content)
        composer = app.query_one(Composer)
        composer.focus()
        composer.text = "第三句"
        await pilot.press("enter")
        await replies_done(app)
        assert app.bench.transcript is not None and app.bench.transcript.path == old.transcript.path
    session = read_session(old.transcript.path)
    asked = [(m.pane, m.turn, m.content) for m in session.messages if m.role == "user"]
    assert asked[-2:] == [("a", 3, "第三句"), ("b", 3, "第三句")]
    assert len(session_files(folder)) == 2
    # the models loaded again are recorded with the settings they went on with, not their family's defaults
    reloaded = [r.model for r in session.records if isinstance(r, ModelRecord) and r.model is not None]
    assert [(m.params or {}).get("max_new_tokens") for m in reloaded] == [3, 3]


async def test_reopening_over_a_conversation_asks_first_and_a_missing_model_leaves_its_pane_read_only(
    make_app: Callable[..., ZhbenchApp], standin_dir: Callable[..., Path], tmp_path: Path
) -> None:
    folder = tmp_path / "transcripts"
    gone = tmp_path / "gone-model"
    shutil.copytree(standin_dir("dialogpt-zh"), gone)
    models = {"a": str(standin_dir("gpt2-dialogbot")), "b": str(gone)}
    old = saved_session(folder, models, ["旧的会话"])
    shutil.rmtree(gone)
    app = make_app(transcripts_folder=folder, preload={"a": models["a"]})
    async with app.run_test(size=SIZE) as pilot:
        await models_loaded(app, "a")
        composer = app.query_one(Composer)
        composer.focus()
        composer.text = "现在的会话"
        await pilot.press("ctrl+t")
        await replies_done(app)
        current = app.bench.transcript
        await open_sessions(app, pilot, "旧的会")
        await pilot.press("enter")
        await wait_until(lambda: isinstance(app.screen, QuestionDialog), what="the question")
        await pilot.press("escape")  # kept: nothing changes
        assert app.bench.transcript is current and app.bench.pane("a").shown[0].text == "现在的会话"
        await open_sessions(app, pilot, "旧的会")
        await pilot.press("enter")
        await wait_until(lambda: isinstance(app.screen, QuestionDialog), what="the question")
        await pilot.press("enter")  # Reopen
        await models_loaded(app, "a")
        pane_b = app.query_one("#pane-b", ChatPane)
        assert f"read-only: {gone} is no longer on this machine" in str(pane_b.query_one(".pane-header").content)
        assert pane_texts(app, "b") == [entry.text for entry in old.pane("b").shown]
        assert app.bench.pane("b").engine is None  # a message goes to A alone
        assert "现在的会话" not in str(app.query_one("#pane-a", ChatPane).query(MessageView).first().content)


async def test_an_arena_round_reopens_read_only_and_a_damaged_one_up_to_the_damage(
    make_app: Callable[..., ZhbenchApp], standin_dir: Callable[..., Path], tmp_path: Path
) -> None:
    folder = tmp_path / "transcripts"
    models = {"a": str(standin_dir("gpt2-dialogbot")), "b": str(standin_dir("dialogpt-zh"))}
    arena = saved_session(folder, models, ["竞技场的问题"], arena=True)
    with arena.transcript.path.open("ab") as file:
        file.write(b'{"type": "message", "content": "\xe5')  # torn by a kill
    app = make_app(transcripts_folder=folder)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_sessions(app, pilot)
        assert screen.rows[0].arena and "arena damaged" in str(screen.query_one(DataTable).get_row_at(0)[-1])
        await pilot.press("enter")
        await wait_until(lambda: isinstance(app.screen, PastArenaScreen), what="the past round")
        past = app.screen
        await wait_until(lambda: bool(pane_texts(app, "a")), what="the round drawn")
        assert pane_texts(app, "a") == [entry.text for entry in arena.pane("a").shown]
        header = str(past.query_one("#pane-a", ChatPane).border_title)
        assert "gpt2-dialogbot" in header  # the name, revealed
        assert past.query_one(Composer).disabled
        assert any("damaged line" in str(n.message) for n in app._notifications)
        await pilot.press("ctrl+r")  # nothing runs again
        assert app.bench.transcript is None and not app.bench.pane("a").shown
        await pilot.press("escape")
        assert app.screen is app.bench_screen


async def test_a_long_session_paints_its_last_messages_first_then_every_earlier_one_in_order(
    make_app: Callable[..., ZhbenchApp], tmp_path: Path
) -> None:
    folder = tmp_path / "transcripts"
    gone = PaneModel("gone", "gpt2-dialogbot", str(tmp_path / "gone"), "cpu", None)
    writer = TranscriptWriter(folder, {"a": gone, "b": None})
    for turn in range(1, 31):
        writer.write(MessageRecord(f"a-{turn}-user", "a", turn, "user", f"问题{turn}", "gone", "t", to=("a",)))
        writer.write(MessageRecord(f"a-{turn}-1", "a", turn, "assistant", f"回答{turn}", "gone", "t"))
    writer.close()
    expected = [text for turn in range(1, 31) for text in (f"问题{turn}", f"回答{turn}")]
    app = make_app(transcripts_folder=folder)
    async with app.run_test(size=SIZE) as pilot:
        await open_sessions(app, pilot)
        await pilot.press("enter")
        assert len(expected) > FIRST_PAINT_VIEWS  # drawn in batches, the last ones first
        await wait_until(lambda: len(pane_texts(app, "a")) == len(expected), what="the earlier messages")
        assert pane_texts(app, "a") == expected
        assert "read-only" in str(app.query_one("#pane-a", ChatPane).query_one(".pane-header").content)


async def test_the_list_holds_the_newest_sessions_and_the_filter_finds_the_others(
    make_app: Callable[..., ZhbenchApp], tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.setattr("zhbench.workbench.screens.sessions.MAX_ROWS", 2)
    folder = tmp_path / "transcripts"
    for number, text in enumerate(["最早的会话", "中间的会话", "最新的会话"]):
        writer = TranscriptWriter(folder, {"a": None}, f"2026010{number + 1}-000000-aaaaaa")
        writer.write(MessageRecord("a-1-user", "a", 1, "user", text, None, "t", to=("a",)))
        writer.close()
    app = make_app(transcripts_folder=folder)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_sessions(app, pilot)
        assert [row.first_message for row in screen.rows] == ["最新的会话", "中间的会话"]
        assert "3 session(s), the newest 2 listed" in str(screen.query_one("#sessions-note").content)
        screen = await open_sessions(app, pilot, "最早的")
        assert [row.first_message for row in screen.rows] == ["最早的会话"]


async def test_a_damaged_session_with_branches_reopens_with_a_note(
    make_app: Callable[..., ZhbenchApp], standin_dir: Callable[..., Path], tmp_path: Path
) -> None:
    folder = tmp_path / "transcripts"
    bench = saved_session(folder, {"a": str(standin_dir("gpt2-dialogbot"))}, ["你好"])
    assert bench.transcript is not None
    path = bench.transcript.path
    bench.transcript = TranscriptWriter.resume(read_session(path))
    for job in bench.edit("a", "a-1-user", "您好"):  # a branch at the first message
        reply = ReplyStream(job.engine, job.history, job.params, cancel=job.cancel).run()
        bench.reply_finished(job.pane, job.generation, reply)
    bench.transcript.close()
    with path.open("ab") as file:
        file.write(b'{"type": "branch", "pane": "a", "mess')  # cut mid-line
    app = make_app(transcripts_folder=folder)
    async with app.run_test(size=SIZE) as pilot:
        await open_sessions(app, pilot)
        await pilot.press("enter")
        await models_loaded(app, "a")
        assert pane_texts(app, "a") == [entry.text for entry in bench.pane("a").shown]
        warnings = [n.message for n in app._notifications if n.severity == "warning"]
        assert warnings == ["1 damaged line(s) of this session could not be read: shown up to them"]
