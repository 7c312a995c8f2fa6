"""Transcript files read back, listed and exported, from Python and from the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from workbench.cli import main
from workbench.session.records import SCHEMA, ClearRecord, MessageRecord, PaneModel
from workbench.session.transcripts import (
    TranscriptError,
    TranscriptWriter,
    find_session,
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


def test_a_line_torn_by_a_kill_is_skipped_but_a_corrupt_middle_line_is_an_error(tmp_path: Path) -> None:
    writer = write_session(tmp_path)
    writer.close()
    with writer.path.open("a", encoding="utf-8") as file:
        file.write('{"type": "message", "id": "a-2-')
    assert len(read_session(writer.path).messages) == 4
    lines = writer.path.read_text(encoding="utf-8").splitlines()
    lines.insert(2, "garbage")
    writer.path.write_text("\n".join(lines), encoding="utf-8")
    with pytest.raises(TranscriptError, match=":3: not a JSON record"):
        read_session(writer.path)


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
    b_at = markdown.index("**B · ../../etc/passwd [bold]** (partial)")
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
