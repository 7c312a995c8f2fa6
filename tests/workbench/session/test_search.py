"""Finding saved sessions by their text: through the index beside the transcripts, and without it."""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

import pytest

from zhbench.workbench.cli import main
from zhbench.workbench.session.records import MessageRecord, PaneModel
from zhbench.workbench.session.search import INDEX_NAME, SearchIndex, find_sessions
from zhbench.workbench.session.transcripts import TranscriptWriter

PANES = {"a": PaneModel("元语 v1", "chatyuan", "/m/元语", "cpu", "float32"), "b": None}


def saved(folder: Path, session_id: str, *texts: str, arena: bool = False) -> Path:
    """A session of pane A: each text a user message, answered with 回答 and the text reversed."""
    writer = TranscriptWriter(folder, PANES, session_id, arena=arena)
    for turn, text in enumerate(texts, 1):
        writer.write(MessageRecord(f"a-{turn}-user", "a", turn, "user", text, "元语 v1", "t", to=("a",)))
        writer.write(MessageRecord(f"a-{turn}-1", "a", turn, "assistant", "回答" + text[::-1], "元语 v1", "t"))
    writer.close()
    return writer.path


def ids(folder: Path, query: str | None) -> list[str]:
    return [row.id for row in find_sessions(folder, query).rows]


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    folder = tmp_path / "transcripts"
    saved(folder, "20260101-000000-aaaaaa", "今天天气怎么样", "Tell me a STORY")
    saved(folder, "20260102-000000-bbbbbb", "北京的烤鸭", arena=True)
    saved(folder, "20260103-000000-cccccc", "上海")
    return folder


def test_sessions_are_found_by_any_message_or_reply_text_chinese_included(folder: Path) -> None:
    assert ids(folder, "天气怎") == ["20260101-000000-aaaaaa"]
    assert ids(folder, "鸭烤的") == ["20260102-000000-bbbbbb"]  # in a reply only
    assert ids(folder, "a story") == ["20260101-000000-aaaaaa"]  # case does not matter
    assert ids(folder, "回答") == ["20260101-000000-aaaaaa", "20260102-000000-bbbbbb", "20260103-000000-cccccc"]
    assert ids(folder, "北京烤鸭") == []  # a substring, not words anywhere
    assert ids(folder, None) == ["20260101-000000-aaaaaa", "20260102-000000-bbbbbb", "20260103-000000-cccccc"]
    assert (folder / INDEX_NAME).exists()


def test_queries_shorter_than_a_trigram_and_with_search_syntax_find_substrings(folder: Path) -> None:
    assert ids(folder, "上") == ["20260103-000000-cccccc"]
    assert ids(folder, "烤鸭") == ["20260102-000000-bbbbbb"]
    saved(folder, "20260104-000000-dddddd", 'say "100%_done" OR NOT *')
    assert ids(folder, '"100%_') == ["20260104-000000-dddddd"]
    assert ids(folder, "%_") == ["20260104-000000-dddddd"]
    assert ids(folder, "OR NOT *") == ["20260104-000000-dddddd"]


def test_a_row_says_what_the_sessions_list_shows(folder: Path) -> None:
    rows = {row.id: row for row in find_sessions(folder).rows}
    first = rows["20260101-000000-aaaaaa"]
    assert (first.first_message, first.turns, first.messages, first.arena) == ("今天天气怎么样", 2, 4, False)
    assert first.models == {"a": "元语 v1", "b": None}  # as the session started
    assert rows["20260102-000000-bbbbbb"].arena


def test_the_index_follows_the_transcripts_never_holding_what_they_do_not(folder: Path) -> None:
    assert ids(folder, "上海") == ["20260103-000000-cccccc"]
    (folder / "20260103-000000-cccccc.jsonl").unlink()
    assert ids(folder, "上海") == []
    path = folder / "20260101-000000-aaaaaa.jsonl"
    path.write_text(path.read_text(encoding="utf-8").replace("天气", "下雨"), encoding="utf-8")
    os.utime(path, ns=(1, 1))  # same size, another time
    assert ids(folder, "天气怎") == []
    assert ids(folder, "下雨怎") == ["20260101-000000-aaaaaa"]
    with sqlite3.connect(folder / INDEX_NAME) as db:
        texts = db.execute("SELECT files.name FROM files JOIN texts ON texts.rowid = files.id").fetchall()
        assert db.execute("SELECT count(*) FROM texts").fetchone() == (2,)  # none left behind
    names = {name for (name,) in texts}
    assert names == {"20260101-000000-aaaaaa.jsonl", "20260102-000000-bbbbbb.jsonl"}


def test_a_damaged_index_is_rebuilt_with_a_note(folder: Path) -> None:
    ids(folder, "上海")
    (folder / INDEX_NAME).write_bytes(b"this is not a database, just noise" * 200)
    found = find_sessions(folder, "上海")
    assert [row.id for row in found.rows] == ["20260103-000000-cccccc"]
    assert found.notes and "damaged" in found.notes[0] and "rebuilt" in found.notes[0]
    assert find_sessions(folder, "上海").notes == []  # the rebuilt index is whole


def test_a_locked_index_is_bypassed_and_the_transcripts_still_answer(folder: Path) -> None:
    ids(folder, None)
    saved(folder, "20260105-000000-eeeeee", "新的会话")  # the index must catch up, and cannot
    holder = sqlite3.connect(folder / INDEX_NAME, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        found = find_sessions(folder, "新的会")
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert [row.id for row in found.rows] == ["20260105-000000-eeeeee"]
    assert found.notes and "searched the transcripts directly" in found.notes[0]


def test_a_damaged_transcript_is_searched_up_to_the_damage(folder: Path) -> None:
    path = saved(folder, "20260106-000000-ffffff", "完整的一句", "后面的话")
    with path.open("ab") as file:
        file.write(b'{"type": "message", "content": "\xe5\x8d')  # torn inside a character
    rows = {row.id: row for row in find_sessions(folder, "完整的").rows}
    assert rows["20260106-000000-ffffff"].damaged_lines == 1
    (folder / "20260107-000000-gggggg.jsonl").write_text("not a session\n", encoding="utf-8")
    everything = find_sessions(folder).rows
    assert [row.error is not None for row in everything][-1]


def test_no_transcripts_folder_is_no_sessions_and_no_note(tmp_path: Path) -> None:
    found = find_sessions(tmp_path / "never-made", "你好")
    assert (found.rows, found.notes) == ([], [])
    assert not (tmp_path / "never-made").exists()  # searching writes nothing where nothing was saved


def test_an_index_of_another_version_is_rebuilt(folder: Path) -> None:
    ids(folder, None)
    with sqlite3.connect(folder / INDEX_NAME) as db:
        db.execute("PRAGMA user_version = 999")
    SearchIndex(folder).close()
    assert ids(folder, "上海") == ["20260103-000000-cccccc"]


def test_the_cli_searches_and_prints_json(folder: Path, capsys: pytest.CaptureFixture[str], monkeypatch) -> None:
    monkeypatch.setattr("zhbench.workbench.session.config.transcripts_dir", lambda: folder)
    assert main(["transcripts", "--search", "烤鸭", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(row["id"], row["first_message"], row["arena"]) for row in rows] == [
        ("20260102-000000-bbbbbb", "北京的烤鸭", True)
    ]
    assert main(["transcripts", "--search", "天气"]) == 0
    out = capsys.readouterr().out
    assert "20260101-000000-aaaaaa" in out and "今天天气怎么样" in out and "bbbbbb" not in out
    assert main(["transcripts", "--search", "没有这句话"]) == 0
    assert "no saved session contains" in capsys.readouterr().out
