"""Transcript files read back, listed and exported, from Python and from the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from zhbench.workbench.cli import main
from zhbench.workbench.session.records import SCHEMA, ChoiceRecord, ClearRecord, MessageRecord, ModelRecord, PaneModel
from zhbench.workbench.session.transcripts import (
    TranscriptError,
    TranscriptWriter,
    find_session,
    list_sessions,
    read_session,
    to_json,
    to_markdown,
)

PANES = {
    "a": PaneModel("元语/ChatYuan 大模型 v1", "chatyuan", "/m/元语", "cpu", "float32", params={}),
    "b": PaneModel("../../etc/passwd [bold]", "dialogpt-zh", "/m/x", "cpu", "float32", params={}),
}
STATS = {"new_tokens": 3, "ttft_s": 0.01, "tokens_per_s": 30.0, "stop_reason": "eos"}


def asked(pane: str, turn: int, content: str, to: tuple[str, ...] = ("a", "b")) -> MessageRecord:
    model = PANES[pane].model
    return MessageRecord(f"{pane}-{turn}-user", pane, turn, "user", content, model, "t", to=to)


def answered(record_id: str, content: str, *, turn: int = 1, **fields: object) -> MessageRecord:
    pane = record_id[0]
    return MessageRecord(record_id, pane, turn, "assistant", content, PANES[pane].model, "t", **fields)  # type: ignore[arg-type]


def write_session(folder: Path, session_id: str | None = None) -> TranscriptWriter:
    writer = TranscriptWriter(folder, PANES, session_id)
    for pane in "ab":
        writer.write(asked(pane, 1, "你好\n第二行"))
    writer.write(answered("a-1-2", "你", partial=True))
    writer.write(answered("a-1-2", "你好呀", partial=False, stats=STATS))
    writer.write(answered("b-1-2", "嗯", partial=True, error="RuntimeError: boom"))
    return writer


#: a session as zhbench wrote it before its records were typed (no "schema"), line for line
OLD_FORMAT = [
    {"panes": {"a": {"model": "tiny chatyuan (demo)", "family": "chatyuan", "path": "/d/chatyuan", "device": "cpu",
                     "dtype": "float32", "demo": True, "params": {"seed": None}}, "b": None},
     "type": "session", "id": "20261124-101500-abc123", "started": "2026-11-24T10:15:00.000+00:00"},
    {"type": "message", "id": "a-1-user", "pane": "a", "turn": 1, "to": ["a"], "role": "user", "content": "你好",
     "model": "tiny chatyuan (demo)", "time": "2026-11-24T10:15:01.000+00:00"},
    {"type": "message", "id": "a-1-2", "pane": "a", "turn": 1, "role": "assistant", "content": "半",
     "model": "tiny chatyuan (demo)", "family": "chatyuan", "params": {"seed": 7}, "stats": None, "partial": True,
     "started": "x", "time": "y"},
    {"type": "message", "id": "a-1-2", "pane": "a", "turn": 1, "role": "assistant", "content": "半句话",
     "model": "tiny chatyuan (demo)", "family": "chatyuan", "params": {"seed": 7}, "partial": False, "started": "x",
     "stats": {"prompt_tokens": 5, "new_tokens": 4, "ttft_s": 0.1, "tokens_per_s": 8.0, "total_s": 0.5,
               "stop_reason": "eos"}, "time": "z"},
    {"type": "model", "pane": "b", "time": "t", "model": "tiny gpt2-dialogbot", "family": "gpt2-dialogbot",
     "path": "/d/g", "device": "cpu", "dtype": "float32", "demo": True, "params": {}},
    {"type": "clear", "pane": "a", "time": "t"},
]  # fmt: skip


def test_a_session_file_is_named_by_its_id_whatever_the_models_are_called(tmp_path: Path) -> None:
    writer = write_session(tmp_path)
    assert writer.path.parent == tmp_path
    assert writer.path.name.isascii() and writer.path.name == f"{writer.session_id}.jsonl"
    session = read_session(writer.path)
    assert session.header.panes["a"] == PANES["a"] and session.header.schema == SCHEMA


def test_the_last_checkpoint_of_a_reply_is_the_one_read_back(tmp_path: Path) -> None:
    session = read_session(write_session(tmp_path).path)
    replies = [m for m in session.messages if m.role == "assistant"]
    assert [(m.id, m.content, m.partial) for m in replies] == [
        ("a-1-2", "你好呀", False),
        ("b-1-2", "嗯", True),
    ]
    assert session.summary()["partial_replies"] == 1


def test_a_damaged_line_is_skipped_and_counted_never_the_session(tmp_path: Path) -> None:
    """Issue 18, item 15: one bad line used to make the whole session unreadable (a corrupt middle line
    was an error, and a cut character failed the UTF-8 decoding of the whole file)."""
    writer = write_session(tmp_path)
    writer.close()
    with writer.path.open("ab") as file:
        file.write('{"type": "message", "id": "a-2-user", "content": "你'.encode()[:-1])  # a full disk, mid-character
    assert len(read_session(writer.path).messages) == 4
    lines = writer.path.read_bytes().split(b"\n")
    lines.insert(2, b"\x00" * 40)  # overwritten with NULs
    lines.insert(4, b"garbage")
    writer.path.write_bytes(b"\n".join(lines))
    session = read_session(writer.path)
    assert [m.content for m in session.messages] == ["你好\n第二行", "你好\n第二行", "你好呀", "嗯"]
    assert session.damaged_lines == 3 and session.summary()["damaged_lines"] == 3


def test_line_separators_inside_a_reply_cannot_split_its_line(tmp_path: Path) -> None:
    writer = TranscriptWriter(tmp_path, PANES)
    tricky = "一\u2028二\u2029三\x85四\x0b五\x1c六"
    writer.write(answered("a-1-2", tricky))
    writer.close()
    assert len(writer.path.read_text(encoding="utf-8").splitlines()) == 2  # what splitlines() readers see
    session = read_session(writer.path)
    assert session.messages[0].content == tricky and session.damaged_lines == 0


def test_an_empty_session_file_left_by_a_full_disk_is_not_listed(tmp_path: Path) -> None:
    write_session(tmp_path)
    (tmp_path / "20991231-235959-000000.jsonl").write_bytes(b"")
    listed = list(list_sessions(tmp_path))
    assert len(listed) == 1 and not isinstance(listed[0], TranscriptError)


def test_sessions_are_found_by_id_prefix_or_latest(tmp_path: Path) -> None:
    first = write_session(tmp_path)
    second = TranscriptWriter(tmp_path, PANES, first.session_id[:-1] + "z")
    assert find_session(tmp_path, "latest").id == max(first.session_id, second.session_id)
    assert find_session(tmp_path, first.session_id).id == first.session_id
    with pytest.raises(TranscriptError, match="matches 2 sessions"):
        find_session(tmp_path, first.session_id[:-1])
    with pytest.raises(TranscriptError, match="no session 'nope'"):
        find_session(tmp_path, "nope")
    assert find_session(tmp_path, str(second.path)).id == second.session_id


def test_markdown_puts_pane_a_first_whichever_pane_finished_first(tmp_path: Path) -> None:
    writer = TranscriptWriter(tmp_path, PANES)
    writer.write(asked("a", 1, "问"))
    writer.write(asked("b", 1, "问"))
    writer.write(answered("b-1-2", "乙答"))
    writer.write(answered("a-1-2", "甲答"))
    writer.write(ClearRecord("a", "t"))
    writer.write(asked("a", 2, "再问", to=("a",)))
    markdown = to_markdown(read_session(writer.path))
    assert markdown.index("甲答") < markdown.index("乙答") < markdown.index("cleared") < markdown.index("再问")


def test_markdown_shows_both_panes_turn_by_turn(tmp_path: Path) -> None:
    markdown = to_markdown(read_session(write_session(tmp_path).path))
    assert "## Turn 1" in markdown and markdown.count("**You**") == 1  # one message sent to both
    assert "> 你好\n> 第二行" in markdown
    a_at = markdown.index("**A · 元语/ChatYuan 大模型 v1**")
    b_at = markdown.index("**B · ../../etc/passwd \\[bold\\]** (partial)")  # a name's brackets are text (item 17)
    assert a_at < b_at
    assert "3 tokens · first after 0.01s · 30.0 tok/s · eos" in markdown
    assert "> error: RuntimeError: boom" in markdown


def test_the_cli_lists_and_exports_sessions(capsys: pytest.CaptureFixture[str], user_dirs: dict[str, Path]) -> None:
    folder = user_dirs["data"] / "zhbench" / "transcripts"
    assert main(["transcripts"]) == 0
    assert "no saved sessions" in capsys.readouterr().out
    writer = write_session(folder)
    assert main(["transcripts", "--json"]) == 0
    (listed,) = json.loads(capsys.readouterr().out)
    assert listed["id"] == writer.session_id and listed["messages"] == 4
    assert listed["models"] == {"a": PANES["a"].model, "b": PANES["b"].model}

    assert main(["export", writer.session_id[:12], "--format", "md"]) == 0
    assert "**A · 元语/ChatYuan 大模型 v1**" in capsys.readouterr().out
    target = user_dirs["data"] / "out.json"
    assert main(["export", "latest", "--format", "json", "-o", str(target)]) == 0
    data = json.loads(target.read_text(encoding="utf-8"))
    assert data["session"]["id"] == writer.session_id and len(data["records"]) == 4

    assert main(["export", "nope"]) == 1
    assert "zhbench: error: no session 'nope'" in capsys.readouterr().err


def test_paths_says_where_every_file_goes(capsys: pytest.CaptureFixture[str], user_dirs: dict[str, Path]) -> None:
    assert main(["paths", "--json"]) == 0
    paths = {name: Path(value) for name, value in json.loads(capsys.readouterr().out).items()}
    assert paths["config"] == user_dirs["config"] / "zhbench" / "config.toml"
    assert paths["transcripts"] == user_dirs["data"] / "zhbench" / "transcripts"
    assert paths["exports"] == user_dirs["data"] / "zhbench" / "exports"
    assert paths["demo_models"] == user_dirs["cache"] / "zhbench" / "demo-models"


def test_a_session_written_before_records_were_typed_still_reads_lists_and_exports(
    capsys: pytest.CaptureFixture[str], user_dirs: dict[str, Path]
) -> None:
    folder = user_dirs["data"] / "zhbench" / "transcripts"
    folder.mkdir(parents=True)
    old = folder / "20261124-101500-abc123.jsonl"
    old.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in OLD_FORMAT), encoding="utf-8")
    session = read_session(old)
    assert session.header.schema == 1 and session.header.panes["a"].demo and session.header.panes["b"] is None
    (reply,) = [m for m in session.messages if m.role == "assistant"]
    assert (reply.content, reply.partial, reply.stats["new_tokens"], reply.params) == ("半句话", False, 4, {"seed": 7})
    assert [type(r).__name__ for r in session.records] == [
        "MessageRecord",
        "MessageRecord",
        "ModelRecord",
        "ClearRecord",
    ]
    # written back out, every record has the fields it was read with
    assert to_json(session)["records"] == [OLD_FORMAT[1], OLD_FORMAT[3], OLD_FORMAT[4], OLD_FORMAT[5]]

    assert main(["transcripts", "--json"]) == 0
    (listed,) = json.loads(capsys.readouterr().out)
    assert listed["models"] == {"a": "tiny chatyuan (demo)", "b": None} and listed["messages"] == 2
    assert main(["export", "latest"]) == 0
    markdown = capsys.readouterr().out
    assert "> 半句话" in markdown and "Pane B now runs tiny gpt2-dialogbot" in markdown and "cleared" in markdown


def test_an_export_marks_the_versions_of_a_regenerated_reply_and_keeps_only_one_in_the_conversation(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 18, item 11: both versions of a regenerated reply were exported as if both had been said."""
    from markdown_it import MarkdownIt

    writer = TranscriptWriter(tmp_path, PANES)
    for pane in "ab":
        writer.write(asked(pane, 1, "问"))
    # pane A: three versions, the person went back to the second; B as zhbench wrote it before there were
    # choices (schema 2): the newest version is the one the conversation went on from
    writer.write(answered("a-1-2", "甲一 </details> <b>不粗</b>", stats=STATS))
    writer.write(answered("b-1-2", "乙一"))
    writer.write(answered("a-1-3", "甲二", regenerates="a-1-2"))
    writer.write(answered("a-1-4", "甲三", regenerates="a-1-3"))
    writer.write(ChoiceRecord("a", "t", "a-1-3"))
    writer.write(answered("b-1-3", "乙二", regenerates="b-1-2"))
    writer.write(asked("a", 2, "再问", to=("a",)))
    writer.write(answered("a-2-5", "甲答二", turn=2))
    session = read_session(writer.path)

    records = to_json(session)["records"]
    versions = {r["id"]: r.get("version") for r in records if r.get("role") == "assistant"}
    assert versions == {
        "a-1-2": {"number": 1, "of": 3, "in_conversation": False},
        "b-1-2": {"number": 1, "of": 2, "in_conversation": False},
        "a-1-3": {"number": 2, "of": 3, "in_conversation": True},
        "a-1-4": {"number": 3, "of": 3, "in_conversation": False},
        "b-1-3": {"number": 2, "of": 2, "in_conversation": True},
        "a-2-5": None,  # never regenerated
    }
    assert {"type": "choice", "pane": "a", "time": "t", "reply": "a-1-3"} in records

    markdown = to_markdown(session)
    html = MarkdownIt("commonmark").render(markdown)
    assert "**A · 元语/ChatYuan 大模型 v1** (version 2 of 3):\n\n> 甲二" in markdown
    folded = [part.split("</details>")[0] for part in html.split("<details>")[1:]]
    assert len(folded) == 3  # A's first and third versions, B's first
    assert "<summary>Version 1 of 3: replaced by regeneration</summary>" in folded[0] and "甲一" in folded[0]
    assert "&lt;/details&gt; &lt;b&gt;不粗&lt;/b&gt;" in folded[0]  # its text stays text inside the fold
    assert "<summary>Version 3 of 3: regenerated, not kept (the conversation went on from version 2)" in folded[1]
    assert "甲三" in folded[1] and "乙一" in folded[2] and "3 tokens · first after 0.01s" in folded[0]
    outside = html.split("<details>")[0] + "".join(part.split("</details>")[-1] for part in html.split("<details>"))
    assert all(text in outside for text in ("甲二", "乙二", "甲答二")) and "甲三" not in outside
    assert markdown.index("甲二") < markdown.index("甲三") < markdown.index("乙一") < markdown.index("再问")

    # ``zhbench export`` writes the same
    assert main(["export", str(writer.path), "--format", "md"]) == 0
    assert capsys.readouterr().out == markdown


def test_an_export_says_whether_a_newly_loaded_model_carried_the_conversation_on(tmp_path: Path) -> None:
    writer = TranscriptWriter(tmp_path, PANES)
    writer.write(ModelRecord("a", "t", PANES["a"], kept_conversation=True))
    writer.write(ModelRecord("b", "t", PANES["a"]))
    writer.write(ModelRecord("a", "t", PANES["a"], swapped=True))
    session = read_session(writer.path)
    assert [r.to_json().get("kept_conversation") for r in session.records] == [True, None, None]
    markdown = to_markdown(session)
    assert "*Pane A now runs 元语/ChatYuan 大模型 v1 (chatyuan, /m/元语), carrying on the conversation.*" in markdown
    assert "*Pane B now runs 元语/ChatYuan 大模型 v1 (chatyuan, /m/元语): a new conversation.*" in markdown
    # half a swap (its other record lost): a swap takes the conversation along
    assert (
        "*Pane A now runs 元语/ChatYuan 大模型 v1 (chatyuan, /m/元语), swapped in with its conversation.*" in markdown
    )


def test_an_export_shows_where_two_panes_were_swapped(tmp_path: Path) -> None:
    writer = write_session(tmp_path)
    writer.write(ModelRecord("a", "t", PANES["b"], swapped=True))  # what Bench.swap writes
    writer.write(ModelRecord("b", "t", PANES["a"], swapped=True))
    writer.write(asked("a", 2, "换了以后"))
    writer.write(answered("a-2-3", "我是B的模型", turn=2))
    markdown = to_markdown(read_session(writer.path))
    swap = (
        "*Panes A and B swapped, each model with its conversation: A now runs ../../etc/passwd \\[bold\\] "
        "(dialogpt-zh, /m/x), B runs 元语/ChatYuan 大模型 v1 (chatyuan, /m/元语).*"
    )
    assert markdown.index("> 你好呀") < markdown.index(swap) < markdown.index("## Turn 2")
    assert "now runs" not in markdown.replace(swap, "")


HOSTILE = [
    "<script>alert(1)</script>",
    '<img src=x onerror="alert(2)">',
    "</details>",
    "<!-- everything after this would vanish",
    "```",
    "# 不是标题\n- 不是列表\n1. 不是编号\n---\n[链接](javascript:alert(3)) **不粗** `不是代码` &amp; \\ 反斜杠",
    "\x1b]0;retitled\x07\x1b[2J\x9b31m\u202eabc",
]


def test_an_export_shows_every_message_as_its_text_whatever_it_holds(tmp_path: Path) -> None:
    """Issue 18, item 17: HTML, comments, fences and escape sequences in a reply passed through the
    Markdown export raw, and broke or hid the rest of the document (or acted on the terminal)."""
    from markdown_it import MarkdownIt

    writer = TranscriptWriter(tmp_path, PANES)
    writer.write(asked("a", 1, "问"))
    for index, hostile in enumerate(HOSTILE):
        writer.write(answered(f"a-1-{index + 2}", hostile + f" 之后{index}", partial=False))
    writer.write(asked("a", 2, "最后一个问题还在", to=("a",)))
    markdown = to_markdown(read_session(writer.path))
    assert "\x1b" not in markdown and "\x9b" not in markdown and "\u202e" not in markdown
    html = MarkdownIt("commonmark").render(markdown)
    for index in range(len(HOSTILE)):
        assert f"之后{index}" in html  # every message, and everything after it, is still there
    assert "最后一个问题还在" in html and "<h2>Turn 2</h2>" in html
    never = ("<script", "<img", "</details>", "<!--", "<pre", "<code", "<h1>不是", "<li>不是", "<hr", "<a ")
    assert not [tag for tag in never if tag in html]
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "[链接](javascript:alert(3))" in html
    assert "&amp;amp;" in html and "\\x1b]0;retitled\\x07" in html  # shown, not acted on


def test_the_json_export_escapes_what_could_act_on_a_terminal(tmp_path: Path) -> None:
    from zhbench.workbench.session.transcripts import to_json_text

    writer = TranscriptWriter(tmp_path, PANES)
    writer.write(answered("a-1-2", HOSTILE[-1]))
    text = to_json_text(read_session(writer.path))
    assert not any(ch in text for ch in "\x1b\x07\x9b\u202e")
    assert json.loads(text)["records"][0]["content"] == HOSTILE[-1]  # the same data


def test_an_export_cut_by_a_full_disk_leaves_the_earlier_file_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 18, item 21: Ctrl+S on a full disk left a 0-byte export."""
    import os

    from zhbench.workbench.session.transcripts import write_atomically

    target = tmp_path / "session.md"
    write_atomically(target, "第一版\n")

    def full_disk(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", full_disk)
    with pytest.raises(OSError, match="No space left"):
        write_atomically(target, "第二版" * 1000)
    assert target.read_text(encoding="utf-8") == "第一版\n"
    assert [p.name for p in tmp_path.iterdir()] == ["session.md"]  # no half-written file left behind


def test_an_export_of_a_damaged_session_with_branches_says_lines_were_left_out(
    capsys: pytest.CaptureFixture[str], user_dirs: dict[str, Path]
) -> None:
    writer = write_session(user_dirs["data"] / "zhbench" / "transcripts")
    edit = MessageRecord("a-2-user", "a", 2, "user", "您好", PANES["a"].model, "t", to=("a",), edits="a-1-user")
    writer.write(edit)
    writer.write(answered("a-2-3", "您好呀", turn=2))
    writer.close()
    with writer.path.open("ab") as file:
        file.write(b'{"type": "branch", "pane": "a", "mess')  # cut mid-line
    note = "1 damaged line(s) of this session could not be read: left out of the export"
    assert main(["export", "latest"]) == 0
    out, err = capsys.readouterr()
    assert err == f"zhbench: {writer.session_id}: {note}\n"
    assert f"*{note}.*" in out.split("## Turn", 1)[0] and "branch 2 of 2" in out
    assert main(["export", "latest", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["damaged_lines"] == 1
