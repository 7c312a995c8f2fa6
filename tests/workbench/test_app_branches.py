"""Editing an earlier message in the app: Enter on it, the edit goes to every pane it went to, and Alt+↑/↓
shows the branch before or after (issue 27 item 4)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from app_driver import models_loaded, replies_done, wait_until

from zhbench.widgets.chat_pane import ChatPane, MessageView
from zhbench.widgets.composer import Composer
from zhbench.widgets.edit_dialog import EditDialog
from zhbench.workbench.app import ZhbenchApp
from zhbench.workbench.session.reopen import reopen
from zhbench.workbench.session.transcripts import read_session

SIZE = (150, 40)


def users_drawn(app: ZhbenchApp, pane: str) -> list[str]:
    return [view.text for view in app.query_one(f"#pane-{pane}", ChatPane).query(MessageView) if view.has_class("user")]


async def test_enter_on_an_earlier_message_edits_it_in_both_panes_and_alt_up_shows_the_earlier_branch(
    make_app: Callable[..., ZhbenchApp], standin_dir: Callable[..., Path]
) -> None:
    app = make_app(preload={"a": str(standin_dir("gpt2-dialogbot")), "b": str(standin_dir("dialogpt-zh"))})
    async with app.run_test(size=SIZE) as pilot:
        await models_loaded(app, "a", "b")
        composer = app.query_one(Composer)
        for text in ("第一句", "第二句"):
            composer.focus()
            composer.text = text
            await pilot.press("enter")
            await replies_done(app)
        before = {pane: list(app.bench.pane(pane).history) for pane in "ab"}

        first = app.query_one("#pane-a", ChatPane).query(MessageView).first()
        first.focus()
        await pilot.press("enter")  # on the message: edit it
        await wait_until(lambda: isinstance(app.screen, EditDialog), what="the edit dialog")
        dialog = app.screen.query_one(Composer)
        assert dialog.text == "第一句"  # the message to start from
        dialog.text = "改过的第一句"
        await pilot.press("enter")
        await wait_until(lambda: not isinstance(app.screen, EditDialog), what="the edit sent")
        await replies_done(app)
        await pilot.pause()
        for pane in "ab":  # both panes it went to: the conversation from the edited message on
            assert users_drawn(app, pane) == ["改过的第一句"] and len(app.bench.pane(pane).history) == 2
        assert "branch 2/2 (alt+↑ alt+↓)" in str(app.query_one("#pane-a", ChatPane).query(MessageView).first().content)

        composer.focus()
        await pilot.press("alt+up")  # from the composer: every pane, back to the earlier branch
        await pilot.pause()
        for pane in "ab":
            assert users_drawn(app, pane) == ["第一句", "第二句"] and app.bench.pane(pane).history == before[pane]
        await pilot.press("alt+up")
        assert any(n.message.startswith("No earlier branch") for n in app._notifications)
        palette = [title for title, _, _ in app.bench_screen.palette_commands()]
        assert "Edit an earlier message: 第二句" in palette and "Later branch" in palette

        assert app.bench.transcript is not None
        session = read_session(app.bench.transcript.path)
        assert [(m.pane, m.edits) for m in session.messages if m.edits] == [("a", "a-1-user"), ("b", "b-1-user")]
        assert [r.to_json()["message"] for r in session.records if r.type == "branch"] == ["a-1-user", "b-1-user"]

        await app.bench_screen.reopen(reopen(session))  # reopened: the branch that was shown, the other kept
        await models_loaded(app, "a", "b")
        await pilot.pause()
        assert users_drawn(app, "a") == ["第一句", "第二句"]
        assert "branch 1/2" in str(app.query_one("#pane-a", ChatPane).query(MessageView).first().content)
        composer.focus()
        await pilot.press("alt+down")
        await pilot.pause()
        assert users_drawn(app, "b") == ["改过的第一句"]
