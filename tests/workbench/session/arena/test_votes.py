"""The vote store: battles come back as they went in, old databases are upgraded, and a vote that was
recorded survives the process being killed."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from zhbench.workbench.session.arena.votes import (
    MIGRATIONS,
    ArenaDataError,
    BattleModel,
    VoteStore,
    migrate,
    new_battle,
    schema_version,
    votes_path,
)


def test_a_battle_comes_back_as_it_was_recorded(make_battle, user_dirs) -> None:
    first = make_battle("qwen", "glm", "a", reply_a="# 标题\n- 一\n- 二", anonymous=True)
    second = make_battle("glm", "qwen", "bothbad", anonymous=False, source="judge")
    with VoteStore.open() as store:
        store.record(first)
        store.record(second)
    assert votes_path() == user_dirs["data"] / "zhbench" / "votes.sqlite3" and votes_path().exists()
    with VoteStore.open() as store:
        assert store.battles() == [first, second]
    assert first.model_a.path == "/models/qwen" and second.model_b.server == "http://127.0.0.1:8000/v1"
    assert first.model_a.params == {"temperature": 0.7} and first.model_a.seed == 1


def test_the_database_is_in_wal_mode_with_its_schema_recorded(tmp_path: Path, make_battle) -> None:
    path = tmp_path / "votes.sqlite3"
    VoteStore.open(path).close()
    connection = sqlite3.connect(path)
    assert connection.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    assert schema_version(connection) == len(MIGRATIONS)


def test_an_older_database_is_upgraded_and_keeps_its_votes(tmp_path: Path, make_battle) -> None:
    path = tmp_path / "votes.sqlite3"
    battle = make_battle("qwen", "glm", "tie")
    with VoteStore.open(path) as store:
        store.record(battle)
    # a later zhbench adds a step: the database written by this one is then the older version
    later = (*MIGRATIONS, ("ALTER TABLE battles ADD COLUMN note TEXT NOT NULL DEFAULT ''",))
    connection = sqlite3.connect(path, isolation_level=None)
    assert migrate(connection, later) == len(MIGRATIONS) + 1
    assert connection.execute("SELECT id, note FROM battles").fetchall() == [(battle.id, "")]
    versions = [row[0] for row in connection.execute("SELECT version FROM schema ORDER BY version")]
    assert versions == list(range(1, len(later) + 1))
    assert migrate(connection, later) == len(later)  # nothing left to apply
    connection.close()


def test_a_failing_step_leaves_the_database_as_it_was(tmp_path: Path) -> None:
    path = tmp_path / "votes.sqlite3"
    VoteStore.open(path).close()
    broken = (*MIGRATIONS, ("CREATE TABLE extra (x)", "NOT SQL AT ALL"))
    connection = sqlite3.connect(path, isolation_level=None)
    with pytest.raises(sqlite3.OperationalError):
        migrate(connection, broken)
    assert schema_version(connection) == len(MIGRATIONS)
    assert connection.execute("SELECT name FROM sqlite_master WHERE name = 'extra'").fetchone() is None


def test_a_database_from_a_newer_zhbench_is_refused_untouched(tmp_path: Path) -> None:
    path = tmp_path / "votes.sqlite3"
    VoteStore.open(path).close()
    connection = sqlite3.connect(path, isolation_level=None)
    connection.execute("INSERT INTO schema VALUES (99, 'later')")
    connection.close()
    with pytest.raises(ArenaDataError, match=r"newer zhbench \(schema 99"):
        VoteStore.open(path)


def test_a_file_that_is_not_a_database_is_one_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "votes.sqlite3"
    path.write_bytes(b"not sqlite, just bytes " * 100)
    with pytest.raises(ArenaDataError, match="damaged or not a vote database"):
        VoteStore.open(path)


def test_a_recorded_vote_survives_kill_9(tmp_path: Path) -> None:
    path = tmp_path / "votes.sqlite3"
    script = textwrap.dedent(
        """
        import sys, time
        from pathlib import Path
        from zhbench.workbench.session.arena.votes import BattleModel, VoteStore, new_battle

        store = VoteStore.open(Path(sys.argv[1]))
        turns = [{"role": "user", "content": "你好"}, {"role": "assistant", "content": "你好！"}]
        models = BattleModel("qwen", "chat-template"), BattleModel("glm", "chat-template")
        battle = new_battle(*models, "b", turns, turns)
        store.record(battle)
        print(battle.id, flush=True)
        time.sleep(60)  # killed here, with the connection open and the log not checkpointed
        """
    )
    process = subprocess.Popen([sys.executable, "-c", script, str(path)], stdout=subprocess.PIPE, text=True)
    try:
        battle_id = process.stdout.readline().strip()
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    assert process.returncode == -signal.SIGKILL and battle_id
    assert path.with_name("votes.sqlite3-wal").stat().st_size > 0  # the vote was only in the write-ahead log
    with VoteStore.open(path) as store:
        [battle] = store.battles()
    assert (battle.id, battle.model_a.id, battle.model_b.id, battle.verdict) == (battle_id, "qwen", "glm", "b")


def test_a_new_battle_is_marked_leaked_when_a_reply_names_its_maker(make_battle) -> None:
    assert make_battle("qwen", "glm", "a", reply_a="我是通义千问，由阿里云开发。").leaked
    assert make_battle("qwen", "glm", "a", reply_b="I am ChatGLM.").leaked
    assert not make_battle("qwen", "glm", "a", reply_a="今天天气很好。").leaked
    assert make_battle("qwen", "glm", "a", reply_a="我是星火", maker_names=["星火"]).leaked
    with pytest.raises(ValueError, match="unknown verdict 'A'"):
        new_battle(BattleModel("x", "f"), BattleModel("y", "f"), "A", [], [])
