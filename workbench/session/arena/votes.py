"""Arena votes: typed battle records, and the SQLite store that keeps them through a crash.

One database in the user data folder (``votes_path()``). WAL journal with ``synchronous=FULL``: a vote is
on disk (the log fsynced) when ``VoteStore.record`` returns, so killing zhbench right after the vote key
loses nothing. The ``schema`` table records each migration applied; ``MIGRATIONS`` only ever grows.
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, Self, get_args

from zhbench.engines.errors import HistoryError
from zhbench.engines.types import Message, validate_messages
from zhbench.workbench.session.arena.leaks import DEFAULT_MAKER_NAMES, names_in_conversation
from zhbench.workbench.session.arena.style import StyleCounts, style_of_conversation
from zhbench.workbench.session.config import data_dir

#: A better, B better, tie, both bad
Verdict = Literal["a", "b", "tie", "bothbad"]
VERDICTS: tuple[Verdict, ...] = get_args(Verdict)
#: who voted: a person, or a model judging the two conversations
Source = Literal["human", "judge"]

#: Each step brings the database one version up, in one transaction. Append new steps; never edit one.
MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (  # 1: the battles
        """CREATE TABLE battles (
            id TEXT PRIMARY KEY,
            time TEXT NOT NULL,
            model_a TEXT NOT NULL,
            model_b TEXT NOT NULL,
            model_a_info TEXT NOT NULL,
            model_b_info TEXT NOT NULL,
            verdict TEXT NOT NULL CHECK (verdict IN ('a', 'b', 'tie', 'bothbad')),
            anonymous INTEGER NOT NULL CHECK (anonymous IN (0, 1)),
            leaked INTEGER NOT NULL CHECK (leaked IN (0, 1)),
            source TEXT NOT NULL CHECK (source IN ('human', 'judge')),
            turns_a TEXT NOT NULL,
            turns_b TEXT NOT NULL
        ) STRICT""",
    ),
)

_COLUMNS = (
    "id, time, model_a, model_b, model_a_info, model_b_info, verdict, anonymous, leaked, source, turns_a, turns_b"
)
_PLACEHOLDERS = ", ".join("?" for _ in _COLUMNS.split(", "))


class ArenaDataError(ValueError):
    """Votes or battles that cannot be read: a damaged or too new database, a broken battles file."""


def votes_path() -> Path:
    """Where the votes are kept."""
    return data_dir() / "votes.sqlite3"


@dataclass(frozen=True)
class BattleModel:
    """One side's model, as revealed after the vote: enough to run it again the same way."""

    id: str  # the name shown after the reveal: hub id, folder name, or the server's model name
    family: str
    path: str | None = None  # local weights
    server: str | None = None  # an OpenAI-compatible server's address
    params: dict[str, Any] = field(default_factory=dict)
    seed: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "family": self.family,
            "path": self.path,
            "server": self.server,
            "params": self.params,
            "seed": self.seed,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> BattleModel:
        seed = data.get("seed")
        return cls(
            id=str(data["id"]),
            family=str(data.get("family") or "?"),
            path=data.get("path") if isinstance(data.get("path"), str) else None,
            server=data.get("server") if isinstance(data.get("server"), str) else None,
            params=dict(data.get("params") or {}),
            seed=seed if isinstance(seed, int) else None,
        )


@dataclass(frozen=True)
class Outcome:
    """What the ranking reads of a battle: who met whom, the verdict, whether it counts by default, and
    (for style control) how each side's replies looked."""

    model_a: str
    model_b: str
    verdict: Verdict
    anonymous: bool = True
    leaked: bool = False
    style_a: StyleCounts | None = None
    style_b: StyleCounts | None = None
    source: Source = "human"


@dataclass(frozen=True)
class Battle:
    """One vote on two whole conversations with the same user turns."""

    id: str
    time: str  # ISO 8601 with the local offset
    model_a: BattleModel
    model_b: BattleModel
    verdict: Verdict
    turns_a: list[Message]
    turns_b: list[Message]
    anonymous: bool = True  # the voter did not know which model was which
    leaked: bool = False  # a reply named its maker, so the vote may not have been blind
    source: Source = "human"

    def outcome(self) -> Outcome:
        return Outcome(
            self.model_a.id,
            self.model_b.id,
            self.verdict,
            self.anonymous,
            self.leaked,
            style_of_conversation(self.turns_a),
            style_of_conversation(self.turns_b),
            self.source,
        )


def new_battle(
    model_a: BattleModel,
    model_b: BattleModel,
    verdict: Verdict,
    turns_a: Sequence[Message],
    turns_b: Sequence[Message],
    *,
    anonymous: bool = True,
    source: Source = "human",
    maker_names: Sequence[str] = DEFAULT_MAKER_NAMES,
) -> Battle:
    """A battle voted now: a fresh id and time, marked leaked when a reply of either side names a maker."""
    if verdict not in VERDICTS:
        raise ValueError(f"unknown verdict {verdict!r} (known: {', '.join(VERDICTS)})")
    leaked = bool(names_in_conversation(turns_a, maker_names) or names_in_conversation(turns_b, maker_names))
    return Battle(
        id=uuid.uuid4().hex,
        time=datetime.now(UTC).astimezone().isoformat(timespec="milliseconds"),
        model_a=model_a,
        model_b=model_b,
        verdict=verdict,
        turns_a=list(turns_a),
        turns_b=list(turns_b),
        anonymous=anonymous,
        leaked=leaked,
        source=source,
    )


class VoteStore:
    """The vote database: ``record`` a battle, read ``battles`` back. Use as a context manager, or ``close``."""

    def __init__(self, connection: sqlite3.Connection, path: Path) -> None:
        self._connection = connection
        self.path = path

    @classmethod
    def open(cls, path: Path | None = None) -> VoteStore:
        """The store at ``path`` (default ``votes_path()``), created or brought up to the latest schema."""
        path = path or votes_path()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            # autocommit mode: every transaction below is explicit
            connection = sqlite3.connect(path, isolation_level=None, timeout=10.0)
        except (OSError, sqlite3.Error) as exc:
            raise ArenaDataError(f"{path}: cannot open the vote database ({exc})") from None
        try:
            connection.execute("PRAGMA journal_mode=WAL")
            # FULL: the log is fsynced at every commit, so a vote survives a power cut, not only a killed process
            connection.execute("PRAGMA synchronous=FULL")
            migrate(connection, MIGRATIONS)
        except sqlite3.DatabaseError as exc:
            connection.close()
            raise ArenaDataError(f"{path}: not a zhbench vote database ({exc})") from None
        except ArenaDataError as exc:
            connection.close()
            raise ArenaDataError(f"{path}: {exc}") from None
        return cls(connection, path)

    def record(self, battle: Battle) -> None:
        """Store ``battle``; it is on disk when this returns."""
        self._connection.execute(
            f"INSERT INTO battles ({_COLUMNS}) VALUES ({_PLACEHOLDERS})",
            _row_of(battle),
        )

    def battles(self) -> list[Battle]:
        """Every stored battle, in the order they were recorded."""
        rows = self._connection.execute(f"SELECT {_COLUMNS} FROM battles ORDER BY rowid").fetchall()
        return [_battle_of(row, self.path) for row in rows]

    def close(self) -> None:
        self._connection.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()


def schema_version(connection: sqlite3.Connection) -> int:
    """The last migration applied to the database (0 for a new one)."""
    row = connection.execute("SELECT MAX(version) FROM schema").fetchone()
    return int(row[0] or 0)


def migrate(connection: sqlite3.Connection, steps: Sequence[Iterable[str]]) -> int:
    """Apply the ``steps`` the database lacks, each in its own transaction; the version reached.

    ``BEGIN IMMEDIATE`` takes the write lock before reading the version, so two processes opening a new
    database at once do not both apply a step. A database newer than ``steps`` is refused, not touched.
    """
    connection.execute("CREATE TABLE IF NOT EXISTS schema (version INTEGER PRIMARY KEY, applied TEXT NOT NULL)")
    while True:
        connection.execute("BEGIN IMMEDIATE")
        try:
            version = schema_version(connection)
            if version > len(steps):
                known = len(steps)
                raise ArenaDataError(f"written by a newer zhbench (schema {version}; this one knows up to {known})")
            if version == len(steps):
                connection.execute("COMMIT")
                return version
            for statement in steps[version]:
                connection.execute(statement)
            connection.execute(
                "INSERT INTO schema (version, applied) VALUES (?, ?)",
                (version + 1, datetime.now(UTC).isoformat(timespec="seconds")),
            )
            connection.execute("COMMIT")
        except BaseException:
            connection.execute("ROLLBACK")
            raise


def _row_of(battle: Battle) -> tuple[str | int, ...]:
    return (
        battle.id,
        battle.time,
        battle.model_a.id,
        battle.model_b.id,
        _json(battle.model_a.to_json()),
        _json(battle.model_b.to_json()),
        battle.verdict,
        int(battle.anonymous),
        int(battle.leaked),
        battle.source,
        _json(battle.turns_a),
        _json(battle.turns_b),
    )


def _battle_of(row: Sequence[Any], path: Path) -> Battle:
    """A stored row as a ``Battle``; a row whose JSON was damaged outside zhbench is named, not guessed at."""
    battle_id, time, _, _, info_a, info_b, verdict, anonymous, leaked, source, turns_a, turns_b = row
    try:
        return Battle(
            id=battle_id,
            time=time,
            model_a=BattleModel.from_json(json.loads(info_a)),
            model_b=BattleModel.from_json(json.loads(info_b)),
            verdict=verdict,
            turns_a=validate_messages(json.loads(turns_a)),
            turns_b=validate_messages(json.loads(turns_b)),
            anonymous=bool(anonymous),
            leaked=bool(leaked),
            source=source,
        )
    except (ValueError, KeyError, TypeError, HistoryError) as exc:
        raise ArenaDataError(f"{path}: battle {battle_id} is damaged ({exc})") from None


def _json(value: object) -> str:
    return json.dumps(value, ensure_ascii=False)
