"""Arena votes: typed battle records, and the SQLite store that keeps them through a crash.

One database in the user data folder (``votes_path()``). WAL journal with ``synchronous=FULL``: a vote is
on disk (the log fsynced) when ``VoteStore.record`` returns, so killing zhbench right after the vote key
loses nothing. The ``schema`` table records each migration applied; ``MIGRATIONS`` only ever grows.
"""

from __future__ import annotations

import errno
import json
import os
import sqlite3
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import closing
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, Self, get_args
from urllib.parse import quote

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
SOURCES: tuple[Source, ...] = get_args(Source)

#: a migration's statement: SQL, or a function of the connection for what SQL alone cannot say
Statement = str | Callable[[sqlite3.Connection], None]


def _ids_from_paths(connection: sqlite3.Connection) -> None:
    """Name each side with local weights by its id (``identity.path_model_id``): until then a model was the
    name it was picked by, so one model voted in the arena (``chatyuan``) and through a batch review
    (``/path/to/chatyuan``) was two. A side whose stored JSON is damaged is left as it is."""
    from zhbench.workbench.session.identity import path_model_id

    rows = connection.execute("SELECT rowid, model_a, model_a_info, model_b, model_b_info FROM battles").fetchall()
    for rowid, *sides in rows:
        named = list(sides)
        for index in (0, 2):
            try:
                info = json.loads(named[index + 1])
            except (TypeError, ValueError):
                continue
            path = info.get("path") if isinstance(info, dict) else None
            if isinstance(path, str) and path:
                named[index] = info["id"] = path_model_id(Path(path))
                named[index + 1] = _json(info)
        if named != sides:
            connection.execute(
                "UPDATE battles SET model_a = ?, model_a_info = ?, model_b = ?, model_b_info = ? WHERE rowid = ?",
                (*named, rowid),
            )


#: Each step brings the database one version up, in one transaction. Append new steps; never edit one.
MIGRATIONS: tuple[tuple[Statement, ...], ...] = (
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
    (_ids_from_paths,),  # 2: one id per model
)

_COLUMNS = (
    "id, time, model_a, model_b, model_a_info, model_b_info, verdict, anonymous, leaked, source, turns_a, turns_b"
)
_PLACEHOLDERS = ", ".join("?" for _ in _COLUMNS.split(", "))


#: how long a command waits for another program's write to the vote database before it says it is busy
BUSY_WAIT_S = 5.0
#: what to do with a vote database zhbench cannot use
_MOVE_ASIDE = "move the file aside and zhbench starts a new one"


class ArenaDataError(ValueError):
    """Votes or battles that cannot be read: a damaged or too new database, a broken battles file."""


def votes_path() -> Path:
    """Where the votes are kept."""
    return data_dir() / "votes.sqlite3"


@dataclass(frozen=True)
class BattleModel:
    """One side's model, as revealed after the vote: enough to run it again the same way."""

    id: str  # the model's one id (``identity.model_identity``): hub id, SERVER/MODEL, name:tag or folder name
    family: str
    path: str | None = None  # local weights
    server: str | None = None  # an OpenAI-compatible server's address
    params: dict[str, Any] = field(default_factory=dict)
    seed: int | None = None
    #: what the model's content is (``sha256:HEX`` or ``revision:HASH``): two models of one id are told apart
    fingerprint: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "fingerprint": self.fingerprint,
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
            fingerprint=data.get("fingerprint") if isinstance(data.get("fingerprint"), str) else None,
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
    def open(cls, path: Path | None = None, *, read_only: bool = False) -> VoteStore:
        """The store at ``path`` (default ``votes_path()``), created or brought up to the latest schema. With
        ``read_only`` nothing is created, migrated or locked, so a store on a read-only disk reads too.

        Every problem is an ``ArenaDataError`` naming the file and what to do: damaged, not zhbench's, too
        new, or busy (another program holds its write lock for longer than ``BUSY_WAIT_S``).
        """
        path = path or votes_path()
        if path.exists() and not path.is_file():  # a FIFO or a device is never opened as a database
            raise ArenaDataError(f"{path}: not a regular file; {_MOVE_ASIDE}")
        try:
            connection = _connect_read_only(path) if read_only else _connect(path)
        except (OSError, sqlite3.Error) as exc:
            raise _store_problem(path, exc) from None
        try:
            _check_tables(connection)
            if read_only:
                _check_version(connection, len(MIGRATIONS))
            else:
                connection.execute("PRAGMA journal_mode=WAL")
                # FULL: the log is fsynced at every commit, so a vote survives a power cut, not only a killed process
                connection.execute("PRAGMA synchronous=FULL")
                migrate(connection, MIGRATIONS)
        except sqlite3.Error as exc:
            connection.close()
            raise _store_problem(path, exc) from None
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

    def rename_model(self, old: str, new: str, *, fingerprint: str = "") -> int:
        """Name the model ``old`` ``new`` in every stored battle (merging it into ``new`` where that is stored
        too), only where its fingerprint's digits start with ``fingerprint`` when one is given (one of two
        models that share an id), in one transaction; the number of battles changed."""
        matches = "(? = '' OR json_extract(model_{0}_info, '$.fingerprint') GLOB '*:' || ? || '*')"
        where = {side: f"model_{side} = ? AND " + matches.format(side) for side in ("a", "b")}
        given = (old, fingerprint, fingerprint)
        self._connection.execute("BEGIN IMMEDIATE")
        try:
            (changed,) = self._connection.execute(
                f"SELECT COUNT(*) FROM battles WHERE ({where['a']}) OR ({where['b']})", given * 2
            ).fetchone()
            for side in ("a", "b"):
                self._connection.execute(
                    f"UPDATE battles SET model_{side} = ?, model_{side}_info = json_set(model_{side}_info, '$.id', ?)"
                    f" WHERE {where[side]}",
                    (new, new, *given),
                )
            self._connection.execute("COMMIT")
        except BaseException:
            self._connection.execute("ROLLBACK")
            raise
        return int(changed)

    def battles(self) -> list[Battle]:
        """Every stored battle, in the order they were recorded."""
        try:
            rows = self._connection.execute(f"SELECT {_COLUMNS} FROM battles ORDER BY rowid").fetchall()
        except sqlite3.Error as exc:
            raise _store_problem(self.path, exc) from None
        return [_battle_of(row, self.path) for row in rows]

    def close(self) -> None:
        self._connection.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()


def _connect(path: Path) -> sqlite3.Connection:
    path.parent.mkdir(parents=True, exist_ok=True)
    # autocommit mode: every transaction below is explicit
    return sqlite3.connect(path, isolation_level=None, timeout=BUSY_WAIT_S)


def _connect_read_only(path: Path) -> sqlite3.Connection:
    """``path`` opened for reading only. A WAL database whose folder cannot be written (so SQLite cannot make
    its shared-memory file) is opened as immutable: on a read-only disk nobody is writing it."""
    if not path.exists():
        raise FileNotFoundError(errno.ENOENT, "no such file", str(path))
    address = f"file:{quote(str(path.absolute()))}?mode=ro"
    connection = sqlite3.connect(address, uri=True, isolation_level=None, timeout=BUSY_WAIT_S)
    try:
        connection.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
    except sqlite3.OperationalError as exc:
        connection.close()
        if exc.sqlite_errorcode != sqlite3.SQLITE_CANTOPEN:
            raise
        connection = sqlite3.connect(address + "&immutable=1", uri=True, isolation_level=None)
    return connection


def _check_tables(connection: sqlite3.Connection) -> None:
    """Refuse a database holding tables but no ``schema`` table: another program's, which zhbench must not
    add its tables to."""
    tables = [row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
    if tables and "schema" not in tables:
        shown = ", ".join(sorted(tables)[:5]) + (", …" if len(tables) > 5 else "")
        raise ArenaDataError(f"not a zhbench vote database (it holds other tables: {shown}); {_MOVE_ASIDE}")


def _check_version(connection: sqlite3.Connection, latest: int) -> None:
    """Refuse to read a database of another schema than ``latest`` (reading must not migrate it)."""
    version = schema_version(connection)
    if version > latest:
        raise ArenaDataError(f"written by a newer zhbench (schema {version}; this one knows up to {latest})")
    if version < latest:
        raise ArenaDataError(
            f"written by an older zhbench (schema {version}): open the arena once where the file can be written, "
            "to bring it up to date"
        )


def _store_problem(path: Path, exc: OSError | sqlite3.Error) -> ArenaDataError:
    """What went wrong with the database at ``path``, as one line saying what to do."""
    code = getattr(exc, "sqlite_errorcode", None)
    if code in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
        return ArenaDataError(
            f"{path}: busy: another program has been writing to the vote database for {BUSY_WAIT_S:g} s; "
            "try again when it is done"
        )
    if code in (sqlite3.SQLITE_NOTADB, sqlite3.SQLITE_CORRUPT):
        return ArenaDataError(
            f"{path}: damaged or not a vote database ({exc}); {_MOVE_ASIDE}, or try `sqlite3 {path} .recover`"
        )
    if isinstance(exc, OSError):
        return ArenaDataError(f"{path}: cannot open the vote database ({exc.strerror or exc})")
    return ArenaDataError(f"{path}: cannot use the vote database ({exc}); {_MOVE_ASIDE}")


def bring_up_to_date(path: Path | None = None) -> None:
    """Apply the migrations a store an older zhbench wrote lacks, where the file can be written (reading it
    read-only refuses an older store rather than change it)."""
    path = path or votes_path()
    if not path.is_file() or not os.access(path, os.W_OK):
        return
    try:
        with closing(_connect_read_only(path)) as connection:  # no lock taken for a store already up to date
            current = schema_version(connection)
    except sqlite3.Error:
        return  # reading it says what is wrong with it
    if current < len(MIGRATIONS):
        VoteStore.open(path).close()


def schema_version(connection: sqlite3.Connection) -> int:
    """The last migration applied to the database (0 for a new one)."""
    row = connection.execute("SELECT MAX(version) FROM schema").fetchone()
    return int(row[0] or 0)


def migrate(connection: sqlite3.Connection, steps: Sequence[Iterable[Statement]]) -> int:
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
                if callable(statement):
                    statement(connection)
                else:
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
        if verdict not in VERDICTS or source not in SOURCES:  # a row written with its checks switched off
            raise ValueError(f"verdict {verdict!r} by {source!r}: known are {', '.join(VERDICTS)} by human or judge")
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
        raise ArenaDataError(
            f"{path}: battle {battle_id} is damaged ({exc}); delete that row, or {_MOVE_ASIDE}"
        ) from None


def _json(value: object) -> str:
    return json.dumps(value, ensure_ascii=False)
