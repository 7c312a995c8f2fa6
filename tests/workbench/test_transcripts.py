"""Transcript files read back, listed and exported, from Python and from the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from workbench.cli import main
from workbench.transcripts import (
    TranscriptError,
    TranscriptWriter,
    find_session,
    read_session,
    to_markdown,
)

PANES = {
    "a": {"model": "元语/ChatYuan 大模型 v1", "family": "chatyuan", "path": "/m/元语", "params": {}},
    "b": {"model": "../../etc/passwd [bold]", "family": "dialogpt-zh", "path": "/m/x", "params": {}},
}


def write_session(folder: Path) -> TranscriptWriter:
    writer = TranscriptWriter(folder, {"panes": PANES})
    for pane in "ab":
        writer.write({"type": "message", "id": f"{pane}-1-user", "pane": pane, "turn": 1, "to": ["a", "b"],
                      "role": "user", "content": "你好\n第二行", "model": PANES[pane]["model"]})  # fmt: skip
    writer.write({"type": "message", "id": "a-1-2", "pane": "a", "role": "assistant", "content": "你", "partial": True})
    writer.write({"type": "message", "id": "a-1-2", "pane": "a", "role": "assistant", "content": "你好呀",
                  "partial": False, "model": PANES["a"]["model"],
                  "stats": {"new_tokens": 3, "ttft_s": 0.01, "tokens_per_s": 30.0, "stop_reason": "eos"}})  # fmt: skip
    writer.write({"type": "message", "id": "b-1-2", "pane": "b", "role": "assistant", "content": "嗯",
                  "partial": True, "model": PANES["b"]["model"], "error": "RuntimeError: boom"})  # fmt: skip
    return writer


def test_a_session_file_is_named_by_its_id_whatever_the_models_are_called(tmp_path: Path) -> None:
    writer = write_session(tmp_path)
    assert writer.path.parent == tmp_path
    assert writer.path.name.isascii() and writer.path.name == f"{writer.session_id}.jsonl"
    session = read_session(writer.path)
    assert session.header["panes"]["a"]["model"] == "元语/ChatYuan 大模型 v1"


def test_the_last_checkpoint_of_a_reply_is_the_one_read_back(tmp_path: Path) -> None:
    session = read_session(write_session(tmp_path).path)
    replies = [m for m in session.messages if m["role"] == "assistant"]
    assert [(m["id"], m["content"], m["partial"]) for m in replies] == [
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
    second = TranscriptWriter(tmp_path, {"id": first.session_id[:-1] + "z", "panes": PANES})
    assert find_session(tmp_path, "latest").id == max(first.session_id, second.session_id)
    assert find_session(tmp_path, first.session_id).id == first.session_id
    with pytest.raises(TranscriptError, match="matches 2 sessions"):
        find_session(tmp_path, first.session_id[:-1])
    with pytest.raises(TranscriptError, match="no session 'nope'"):
        find_session(tmp_path, "nope")
    assert find_session(tmp_path, str(second.path)).id == second.session_id


def test_markdown_puts_pane_a_first_whichever_pane_finished_first(tmp_path: Path) -> None:
    writer = TranscriptWriter(tmp_path, {"panes": PANES})
    writer.write({"type": "message", "id": "a-1-user", "pane": "a", "turn": 1, "role": "user", "content": "问"})
    writer.write({"type": "message", "id": "b-1-user", "pane": "b", "turn": 1, "role": "user", "content": "问"})
    writer.write({"type": "message", "id": "b-1-2", "pane": "b", "turn": 1, "role": "assistant", "content": "乙答"})
    writer.write({"type": "message", "id": "a-1-2", "pane": "a", "turn": 1, "role": "assistant", "content": "甲答"})
    writer.write({"type": "clear", "pane": "a"})
    writer.write({"type": "message", "id": "a-2-user", "pane": "a", "turn": 2, "role": "user", "content": "再问"})
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
    assert listed["models"] == {"a": PANES["a"]["model"], "b": PANES["b"]["model"]}

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
