"""Finding saved sessions fast: a search index beside the transcripts, rebuilt from them.

The JSON-lines transcripts stay the record of truth. The index (SQLite, in the transcripts folder) holds,
for each session file, the size and modification time it was read at, the row the sessions list shows,
and every message and reply text in an FTS5 table with the trigram tokenizer: a substring search over
Chinese needs no word splitting. Before each use the index catches up with the folder: a file that is
new or changed (size or time) is read again, one that is gone is dropped, so the index never holds
anything the transcripts do not. A query of one or two characters (shorter than a trigram) is a LIKE
over the same texts.

An index that is damaged is deleted and rebuilt; one that cannot be used (locked by another zhbench, a
read-only folder) is bypassed: the search reads the transcripts themselves. Either way a note says so.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from zhbench.workbench.session.records import MessageRecord
from zhbench.workbench.session.transcripts import SUFFIX, Session, TranscriptError, read_session, session_files

#: the index file, in the transcripts folder
INDEX_NAME = "search-index.sqlite3"
#: bumped when the index's tables or rows change shape: an index of another version is rebuilt
INDEX_VERSION = 2
#: how long to wait for another zhbench writing the index before searching the transcripts directly
LOCK_WAIT_S = 1.0
#: the length of a first message in a session's row
FIRST_MESSAGE_CHARS = 200


@dataclass(frozen=True)
class SessionRow:
    """One saved session as the sessions list shows it (``error`` set: a file that could not be read)."""

    id: str
    path: str
    started: str = "?"
    models: dict[str, str | None] = field(default_factory=dict)
    first_message: str = ""
    turns: int = 0
    messages: int = 0
    partial_replies: int = 0
    arena: bool = False
    damaged_lines: int = 0
    error: str | None = None

    @classmethod
    def of(cls, session: Session) -> SessionRow:
        summary = session.summary()
        users = [m for m in session.messages if m.role == "user"]
        return cls(
            id=session.id,
            path=str(session.path),
            started=session.header.started,
            models=summary["models"],
            first_message=users[0].content[:FIRST_MESSAGE_CHARS] if users else "",
            turns=len({m.turn for m in users}),
            messages=summary["messages"],
            partial_replies=summary["partial_replies"],
            arena=session.header.arena,
            damaged_lines=session.damaged_lines,
        )

    @classmethod
    def unreadable(cls, path: Path, error: TranscriptError) -> SessionRow:
        return cls(id=path.stem, path=str(path), error=str(error))

    def to_json(self) -> dict[str, Any]:
        """``zhbench transcripts --json``'s object: the listing's keys, then the row's own."""
        if self.error is not None:
            return {"id": self.id, "path": self.path, "error": self.error}
        data = {
            "id": self.id,
            "path": self.path,
            "started": self.started,
            "models": self.models,
            "messages": self.messages,
            "partial_replies": self.partial_replies,
            "turns": self.turns,
            "first_message": self.first_message,
            "arena": self.arena,
        }
        return data | ({"damaged_lines": self.damaged_lines} if self.damaged_lines else {})

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SessionRow:
        return cls(**{key: value for key, value in data.items() if key in cls.__dataclass_fields__})


def session_text(session: Session) -> str:
    """Every message and reply of a session (each version of a regenerated reply, each reply's thinking),
    one per line: what a search looks in."""
    return "\n".join(_texts(session.messages))


def _texts(messages: Iterable[MessageRecord]) -> Iterator[str]:
    for message in messages:
        yield message.content
        if message.reasoning:
            yield message.reasoning


@dataclass
class Found:
    """Sessions found, oldest first, and what the search had to do without (the index, a file)."""

    rows: list[SessionRow]
    notes: list[str] = field(default_factory=list)


def find_sessions(folder: Path, query: str | None = None) -> Found:
    """The sessions in ``folder`` whose messages or replies contain ``query`` (case-insensitive), or every
    session for no query; through the index, else straight from the transcripts."""
    notes: list[str] = []
    if not folder.is_dir():  # nothing saved yet
        return Found([], notes)
    for attempt in range(2):
        try:
            with closing(SearchIndex(folder)) as index:
                index.refresh()
                return Found(index.rows(query), notes)
        except sqlite3.DatabaseError as exc:
            if attempt == 0 and _is_damage(exc) and _remove_index(folder):
                notes.append(f"the search index was damaged ({exc}): rebuilt from the transcripts")
                continue
            notes.append(f"the search index could not be used ({exc}): searched the transcripts directly")
            break
        except OSError as exc:
            notes.append(f"the search index could not be used ({exc.strerror or exc}): searched the transcripts")
            break
    return Found(scan_sessions(folder, query), notes)


def scan_sessions(folder: Path, query: str | None = None) -> list[SessionRow]:
    """``find_sessions`` without the index: every transcript read (slow over thousands, always right)."""
    needle = query.casefold() if query else None
    rows: list[SessionRow] = []
    for path in session_files(folder):
        try:
            session = read_session(path)
        except TranscriptError as exc:
            if needle is None:
                rows.append(SessionRow.unreadable(path, exc))
            continue
        if needle is None or needle in session_text(session).casefold():
            rows.append(SessionRow.of(session))
    return rows


def _is_damage(exc: sqlite3.DatabaseError) -> bool:
    """A damaged index file (not a lock or a missing permission, which deleting would not mend)."""
    return not isinstance(exc, sqlite3.OperationalError) or "malformed" in str(exc)


def _remove_index(folder: Path) -> bool:
    try:
        for suffix in ("", "-journal", "-wal", "-shm"):
            (folder / f"{INDEX_NAME}{suffix}").unlink(missing_ok=True)
    except OSError:
        return False
    return True


class SearchIndex:
    """The index file of one transcripts folder; ``refresh`` before reading it."""

    def __init__(self, folder: Path) -> None:
        if not folder.is_dir():
            raise FileNotFoundError(2, "no transcripts folder", str(folder))
        self.folder = folder
        self.db = sqlite3.connect(folder / INDEX_NAME, timeout=LOCK_WAIT_S, isolation_level=None)
        try:
            self._prepare()
        except BaseException:
            self.db.close()
            raise

    def close(self) -> None:
        self.db.close()

    def _prepare(self) -> None:
        version = self.db.execute("PRAGMA user_version").fetchone()[0]
        if version == INDEX_VERSION:
            self.db.execute("SELECT count(*) FROM files").fetchone()  # reads the file: damage shows here
            return
        with self._transaction():
            self.db.execute("DROP TABLE IF EXISTS files")
            self.db.execute("DROP TABLE IF EXISTS texts")
            self.db.execute(
                "CREATE TABLE files (id INTEGER PRIMARY KEY, name TEXT UNIQUE NOT NULL, size INTEGER, "
                "mtime_ns INTEGER, summary TEXT NOT NULL)"
            )
            # a session's texts share the rowid of its row in files: found and deleted by it, not by a scan
            self.db.execute("CREATE VIRTUAL TABLE texts USING fts5(body, tokenize='trigram')")
            self.db.execute(f"PRAGMA user_version = {INDEX_VERSION}")

    def _transaction(self) -> _Transaction:
        return _Transaction(self.db)

    def refresh(self) -> None:
        """Catch up with the folder: read new and changed files, drop the rows of files that are gone."""
        on_disk = _stat_sessions(self.folder)
        listed = self.db.execute("SELECT name, size, mtime_ns FROM files")
        indexed = {name: (size, mtime) for name, size, mtime in listed}
        stale = [name for name, seen in on_disk.items() if indexed.get(name) != seen]
        gone = [name for name in indexed if name not in on_disk]
        if not stale and not gone:
            return
        with self._transaction():
            for name in [*gone, *stale]:
                for (rowid,) in self.db.execute("SELECT rowid FROM files WHERE name = ?", (name,)).fetchall():
                    self.db.execute("DELETE FROM texts WHERE rowid = ?", (rowid,))
                self.db.execute("DELETE FROM files WHERE name = ?", (name,))
            for name in stale:
                self._add(self.folder / name, on_disk[name])

    def _add(self, path: Path, seen: tuple[int, int]) -> None:
        try:
            session = read_session(path)
        except TranscriptError as exc:
            row, text = SessionRow.unreadable(path, exc), ""
        else:
            row, text = SessionRow.of(session), session_text(session)
        added = self.db.execute(
            "INSERT INTO files (name, size, mtime_ns, summary) VALUES (?, ?, ?, ?)",
            (path.name, *seen, json.dumps(row.to_json(), ensure_ascii=False)),
        )
        if text:
            self.db.execute("INSERT INTO texts (rowid, body) VALUES (?, ?)", (added.lastrowid, text))

    def rows(self, query: str | None = None) -> list[SessionRow]:
        """The indexed sessions whose texts contain ``query`` (all for None), oldest first."""
        if not query:
            found = self.db.execute("SELECT summary FROM files ORDER BY name")
        elif len(query) >= 3:  # a phrase of trigrams: the index finds the substring
            phrase = '"' + query.replace('"', '""') + '"'
            found = self.db.execute(
                "SELECT summary FROM files WHERE rowid IN (SELECT rowid FROM texts WHERE texts MATCH ?) ORDER BY name",
                (phrase,),
            )
        else:  # shorter than a trigram: a scan of the indexed texts
            pattern = "%" + query.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            found = self.db.execute(
                "SELECT summary FROM files WHERE rowid IN (SELECT rowid FROM texts WHERE body LIKE ? ESCAPE '\\') "
                "ORDER BY name",
                (pattern,),
            )
        return [SessionRow.from_json(json.loads(row)) for (row,) in found]


def _stat_sessions(folder: Path) -> dict[str, tuple[int, int]]:
    """Each session file's name, size and modification time (one directory read; empty files left out, as
    ``session_files`` leaves them)."""
    found: dict[str, tuple[int, int]] = {}
    with os.scandir(folder) as entries:
        for entry in entries:
            if not entry.name.endswith(SUFFIX):
                continue
            try:
                seen = entry.stat()
            except OSError:
                continue
            if seen.st_size > 0:
                found[entry.name] = (seen.st_size, seen.st_mtime_ns)
    return found


class _Transaction:
    """BEGIN IMMEDIATE … COMMIT (ROLLBACK on any error): one writer at a time, the index whole or unchanged."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def __enter__(self) -> None:
        self.db.execute("BEGIN IMMEDIATE")

    def __exit__(self, kind: object, *_: object) -> None:
        self.db.execute("COMMIT" if kind is None else "ROLLBACK")
