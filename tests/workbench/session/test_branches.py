"""Editing an earlier message: a branch from there, the earlier one kept and shown again, reopened as it was
left, exported as shown (or every branch), and found by search."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path

import pytest
from test_bench import loaded, run
from test_reopen import conversation

from zhbench.workbench.cli import main
from zhbench.workbench.session.bench import Bench, ReplyJob
from zhbench.workbench.session.branches import branch_place
from zhbench.workbench.session.records import SCHEMA, BranchRecord, MessageRecord
from zhbench.workbench.session.reopen import continue_in, reopen
from zhbench.workbench.session.search import find_sessions
from zhbench.workbench.session.transcripts import read_session, to_json, to_json_text, to_markdown

#: a session zhbench wrote before branches (schema 3: regenerations, a choice, a failed reply, a swap, a model
#: that carried the conversation on, a clear), and its exports as that zhbench wrote them
SCHEMA_3 = Path(__file__).parent / "schema3" / "20261201-120000-abc123"


@pytest.fixture
def bench(tmp_path: Path, standin_dir: Callable[..., Path]) -> Bench:
    """Two panes that have talked for three turns."""
    bench = Bench(tmp_path, pane_count=2)
    loaded(bench, "a", standin_dir("gpt2-dialogbot"), "dialogbot")
    loaded(bench, "b", standin_dir("dialogpt-zh"), "DialoGPT")
    for state in bench.panes:
        assert state.params is not None
        state.params = state.params.with_overrides({"max_new_tokens": 3, "seed": 1})
    for text in ("第一句", "第二句", "第三句"):
        talk(bench, bench.send(text, ["a", "b"]))
    return bench


def talk(bench: Bench, jobs: list[ReplyJob]) -> None:
    assert jobs
    for job in jobs:
        run(bench, job)


def users(bench: Bench, pane: str) -> list[str]:
    return [entry.text for entry in bench.pane(pane).shown if entry.role == "user"]


def test_editing_an_earlier_message_branches_every_pane_it_went_to_and_the_earlier_branch_shows_again(
    bench: Bench,
) -> None:
    before = {state.name: copy.deepcopy(conversation(state)) for state in bench.panes}
    assert bench.edit_targets("a", "a-2-user") == ["a", "b"]

    talk(bench, bench.edit("a", "a-2-user", "改过的第二句"))
    for state in bench.panes:
        assert users(bench, state.name) == ["第一句", "改过的第二句"]
        assert state.history[:2] == before[state.name][1][:2]  # the turn before the edited message is kept
        assert state.history[2] == {"role": "user", "content": "改过的第二句"} and len(state.shown) == 4
        assert branch_place(state, state.shown[2]) == (2, 2)

    assert bench.choose_branch("a", 1) is None  # no later branch
    assert bench.choose_branch("a", -1) == "a-2-user"
    assert conversation(bench.pane("a")) == before["a"]  # the earlier branch whole: replies, versions, history
    assert branch_place(bench.pane("a"), bench.pane("a").shown[2]) == (1, 2)
    (job,) = bench.send("接着原来的", ["a"])  # the next message goes on from the branch shown
    assert job.history[:-1] == before["a"][1]
    run(bench, job)

    assert bench.transcript is not None
    session = read_session(bench.transcript.path)
    assert session.header.schema == SCHEMA == 4
    edits = [(m.pane, m.turn, m.edits) for m in session.messages if m.edits]
    assert edits == [("a", 4, "a-2-user"), ("b", 4, "b-2-user")]
    assert [(r.pane, r.message) for r in session.records if isinstance(r, BranchRecord)] == [("a", "a-2-user")]


def test_a_branch_of_a_branch_and_a_busy_pane(bench: Bench) -> None:
    talk(bench, bench.edit("a", "a-3-user", "第三句改一"))
    talk(bench, bench.edit("b", "b-4-user", "第三句改二"))  # an edit of the edit: the same fork, a third branch
    assert [users(bench, p) for p in "ab"] == [["第一句", "第二句", "第三句改二"]] * 2
    assert branch_place(bench.pane("a"), bench.pane("a").shown[4]) == (3, 3)
    talk(bench, bench.edit("a", "a-2-user", "第二句改"))  # an earlier fork, whose first branch holds the later one
    assert bench.choose_branch("a", -1) == "a-2-user"
    assert users(bench, "a") == ["第一句", "第二句", "第三句改二"]
    assert bench.choose_branch("a", -1, "a-5-user") == "a-4-user"  # stepping at the fork of a message shown
    assert users(bench, "a") == ["第一句", "第二句", "第三句改一"]

    (job,) = bench.send("只给A", ["a"])
    assert bench.choose_branch("a", 1) is None  # A replies: it stays where it is
    run(bench, job)
    assert users(bench, "a") == ["第一句", "第二句", "第三句改一", "只给A"]


def test_a_reopened_branched_session_stands_as_it_was_left_and_goes_on_from_the_branch_shown(
    bench: Bench, tmp_path: Path
) -> None:
    talk(bench, bench.edit("a", "a-3-user", "第三句改"))
    talk(bench, bench.edit("a", "a-2-user", "第二句改"))
    assert bench.choose_branch("a", -1) == "a-2-user"
    assert bench.choose_branch("a", -1) == "a-3-user"  # inside it, the first branch of the later fork
    assert bench.transcript is not None

    reopened = reopen(read_session(bench.transcript.path))
    for state in bench.panes:
        assert conversation(reopened.panes[state.name]) == conversation(state), state.name

    again = Bench(tmp_path, pane_count=2)
    for state in again.panes:
        state.engine, state.params = bench.pane(state.name).engine, bench.pane(state.name).params
    continue_in(again, reopened)
    for step, message in ((1, "a-4-user"), (-1, "a-3-user")):  # the branches are there to step between
        assert again.choose_branch("a", step) == message
        assert bench.choose_branch("a", step) == message
        assert conversation(again.pane("a")) == conversation(bench.pane("a"))
    (job,) = again.send("接着", ["a"])
    assert job.history[:-1] == bench.pane("a").history and users(again, "a")[-2:] == ["第三句", "接着"]


def test_exports_show_the_conversation_as_shown_or_every_branch(
    bench: Bench, capsys: pytest.CaptureFixture[str]
) -> None:
    talk(bench, bench.edit("a", "a-2-user", "第二句改"))
    assert bench.transcript is not None
    path = bench.transcript.path
    session = read_session(path)

    markdown = to_markdown(session)
    assert "第二句改" in markdown and "第二句\n" not in markdown and "第三句" not in markdown
    assert "**You** (to A and B; branch 2 of 2 (`zhbench export --all-branches` shows the others)):" in markdown
    shown_ids = [r["id"] for r in to_json(session)["records"] if r.get("type") == "message"]
    assert "a-2-user" not in shown_ids and "a-3-user" not in shown_ids and "a-4-user" in shown_ids
    set_aside = {m.id for m in session.messages if m.turn in (2, 3)}
    assert not set_aside & set(shown_ids)

    assert main(["export", str(path), "--all-branches"]) == 0
    every = capsys.readouterr().out
    assert all(text in every for text in ("第二句", "第三句", "第二句改"))
    assert "**You** (to A and B; branch 1 of 2, not shown):" in every
    assert "**You** (to A and B; on a branch not shown):" in every  # the third turn's, after the edited one
    assert every.count("(on a branch not shown):") == 4  # the replies of turns 2 and 3 in each pane
    assert main(["export", str(path), "--all-branches", "--format", "json"]) == 0
    records = json.loads(capsys.readouterr().out)["records"]
    assert {r["id"] for r in records if r.get("set_aside")} == set_aside
    assert {r["id"]: r["branch"] for r in records if "branch" in r} == {
        "a-2-user": {"number": 1, "of": 2, "shown": False},
        "b-2-user": {"number": 1, "of": 2, "shown": False},
        "a-4-user": {"number": 2, "of": 2, "shown": True},
        "b-4-user": {"number": 2, "of": 2, "shown": True},
    }
    # the search finds the text of every branch, shown or not
    assert [row.id for row in find_sessions(path.parent, "第三句").rows] == [session.id]


def test_a_session_of_an_older_schema_reads_and_exports_exactly_as_before() -> None:
    session = read_session(SCHEMA_3.with_suffix(".jsonl"))
    assert session.header.schema == 3
    assert to_markdown(session) == SCHEMA_3.with_suffix(".md").read_text(encoding="utf-8")
    assert to_json_text(session) == SCHEMA_3.with_suffix(".json").read_text(encoding="utf-8")
    reopened = reopen(session)
    assert [e.text for e in reopened.panes["b"].shown if e.role == "user"] == ["你好", "再说", "第三"]
    assert all(not state.forks for state in reopened.panes.values())


def test_markdown_shows_a_system_prompt_once_where_it_applies(tmp_path: Path) -> None:
    """The /system of ``zhbench chat`` is in each reply's settings; the export said nothing of it."""
    from zhbench.workbench.session.records import PaneModel
    from zhbench.workbench.session.transcripts import TranscriptWriter

    writer = TranscriptWriter(tmp_path, {"a": PaneModel("m", "qwen2", "/m", "cpu", None)})
    for turn, prompt in ((1, "你是诗人"), (2, "你是诗人"), (3, ""), (4, "你是厨师")):
        writer.write(MessageRecord(f"a-{turn}-user", "a", turn, "user", f"问{turn}", "m", "t", to=("a",)))
        params = {"seed": 1, "system_prompt": prompt}
        writer.write(MessageRecord(f"a-{turn}-2", "a", turn, "assistant", f"答{turn}", "m", "t", params=params))
    markdown = to_markdown(read_session(writer.path))
    assert markdown.count("你是诗人") == 1 and markdown.count("你是厨师") == 1
    assert markdown.index("问1") < markdown.index("*System prompt of pane A from here on:*\n\n> 你是诗人") < markdown.index("答1")  # noqa: E501
    assert markdown.index("答2") < markdown.index("*Pane A: no system prompt from here on.*") < markdown.index("答3")
    assert markdown.index("答3") < markdown.index("你是厨师") < markdown.index("答4")
