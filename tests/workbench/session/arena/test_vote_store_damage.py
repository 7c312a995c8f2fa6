"""A vote database that zhbench cannot use is one line naming the file and what to do; a busy one is waited
on briefly and called busy; a read-only one is still read (issue 26 §6)."""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.workbench.tmpfs import make_read_only, tmpfs
from zhbench.workbench.cli import main
from zhbench.workbench.session.arena.votes import ArenaDataError, Battle, VoteStore, votes_path

READERS = (["leaderboard", "--bootstrap", "0"], ["votes", "export"])


def _store_with_votes(make_battle: Callable[..., Battle], count: int = 200) -> Path:
    path = votes_path()
    with VoteStore.open(path) as store:
        for number in range(count):
            store.record(make_battle("qwen", "glm", "ab"[number % 3 == 0], reply_a="长回答" * 40))
    return path


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _one_line_each(capsys: pytest.CaptureFixture[str], *expected: str) -> None:
    for command in READERS:
        assert main(command) == 1
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and str(votes_path()) in err, err
        for text in expected:
            assert text in err, err


def test_a_truncated_database_is_one_line(make_battle, capsys) -> None:
    path = _store_with_votes(make_battle)
    os.truncate(path, path.stat().st_size // 2)
    _one_line_each(capsys, "damaged", "move the file aside")


def test_random_bytes_are_one_line(capsys) -> None:
    votes_path().parent.mkdir(parents=True)
    votes_path().write_bytes(os.urandom(4096))
    _one_line_each(capsys, "damaged or not a vote database", "move the file aside")


def test_a_fifo_in_its_place_is_one_line(capsys) -> None:
    votes_path().parent.mkdir(parents=True)
    os.mkfifo(votes_path())
    _one_line_each(capsys, "not a regular file")


@pytest.mark.parametrize(
    "tables",
    ["CREATE TABLE battles (x)", "CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT)"],
)
def test_another_programs_database_is_refused_and_left_untouched(tables: str, capsys) -> None:
    votes_path().parent.mkdir(parents=True)
    with sqlite3.connect(votes_path()) as connection:
        connection.execute(tables)
    before = _digest(votes_path())
    _one_line_each(capsys, "not a zhbench vote database", "move the file aside")
    with pytest.raises(ArenaDataError, match="it holds other tables"):
        VoteStore.open()  # the arena's writer too: it must not add its tables to another program's file
    assert _digest(votes_path()) == before


def test_an_out_of_range_verdict_names_the_battle(make_battle, capsys) -> None:
    path = _store_with_votes(make_battle, count=3)
    with sqlite3.connect(path) as connection:
        connection.execute("PRAGMA ignore_check_constraints = ON")
        connection.execute("UPDATE battles SET verdict = 'a-ish' WHERE rowid = 2")
    _one_line_each(capsys, "verdict 'a-ish'", "delete that row")


@pytest.fixture
def quick_busy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("zhbench.workbench.session.arena.votes.BUSY_WAIT_S", 0.3)


def _held(path: Path, statement: str) -> Iterator[None]:
    """Another program holding a lock on ``path`` while the block runs."""
    connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    connection.execute(statement)
    try:
        yield
    finally:
        connection.execute("ROLLBACK")
        connection.close()


def test_a_writer_elsewhere_makes_the_store_busy_not_foreign(make_battle, quick_busy, capsys) -> None:
    path = _store_with_votes(make_battle, count=2)
    for _ in _held(path, "BEGIN IMMEDIATE"):  # another zhbench (or sqlite3) writing: the arena's writer waits
        with pytest.raises(ArenaDataError, match="busy: another program has been writing"):
            VoteStore.open()
        assert main(["leaderboard", "--bootstrap", "0"]) == 0  # reading a WAL store takes no lock
    capsys.readouterr()
    with sqlite3.connect(path) as connection:
        connection.execute("PRAGMA journal_mode = DELETE")  # a store another tool switched out of WAL
    for _ in _held(path, "BEGIN EXCLUSIVE"):
        _one_line_each(capsys, "busy")
    assert main(["leaderboard", "--bootstrap", "0"]) == 0


def _read_only(folder: Path) -> Iterator[None]:
    """``folder`` made read-only for this process: a read-only tmpfs when root (whom modes do not stop),
    its mode otherwise."""
    if os.geteuid() != 0:
        folder.chmod(0o555)
        for child in folder.iterdir():
            child.chmod(0o444)
        yield
        folder.chmod(0o755)
        return
    yield from _read_only_mount(folder)


def _read_only_mount(folder: Path) -> Iterator[None]:
    saved = {child.name: child.read_bytes() for child in folder.iterdir()}
    with tmpfs(folder):
        for name, data in saved.items():
            (folder / name).write_bytes(data)
        make_read_only(folder)
        yield


def test_a_read_only_store_is_read(make_battle, capsys) -> None:
    path = _store_with_votes(make_battle, count=6)
    for _ in _read_only(path.parent):
        with pytest.raises(OSError):
            (path.parent / "probe").write_text("x")  # the folder really cannot be written
        assert main(["leaderboard", "--bootstrap", "0", "--json"]) == 0
        assert '"battles": 6' in capsys.readouterr().out
        assert main(["votes", "export"]) == 0
        assert len(json.loads(capsys.readouterr().out)) == 6
