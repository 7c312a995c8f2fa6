"""Transcripts: every session saved as JSON lines while it happens, listed and exported later.

A session file starts with one ``session`` record. Then come ``message`` records (a user message or a
reply, per pane), ``model`` records (a pane got another model) and ``clear`` records (a pane's
conversation was cleared). Every record is flushed and fsynced as it is written.

A reply is written more than once while it streams: each checkpoint is a ``message`` record with the
same ``id`` and ``partial: true``, and the last record of an id is the one that counts. So a reply cut
off by a crash is still on disk, marked partial; a reply stopped by the user keeps ``partial: true``.
"""

from __future__ import annotations

import json
import os
import secrets
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from engines.types import stats_summary

SUFFIX = ".jsonl"


class TranscriptError(Exception):
    """A session that cannot be found or read."""


def now_iso() -> str:
    return datetime.now(UTC).astimezone().isoformat(timespec="milliseconds")


def new_session_id() -> str:
    """``YYYYMMDD-HHMMSS-xxxxxx``: sortable by start time, unique, and safe as a file name anywhere."""
    return f"{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(3)}"


class TranscriptWriter:
    """Appends the records of one session to its file, each flushed and fsynced before returning."""

    def __init__(self, folder: Path, session: Mapping[str, Any]) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.session_id: str = session.get("id") or new_session_id()
        self.path = folder / f"{self.session_id}{SUFFIX}"
        self._file: TextIO = self.path.open("a", encoding="utf-8")
        self.write({**session, "type": "session", "id": self.session_id, "started": now_iso()})

    def write(self, record: Mapping[str, Any]) -> None:
        self._file.write(json.dumps(record, ensure_ascii=False) + "\n")
        self._file.flush()
        os.fsync(self._file.fileno())

    def close(self) -> None:
        self._file.close()


@dataclass
class Session:
    """A saved session read back: its header, and its records with each message in its last version."""

    id: str
    path: Path
    header: dict[str, Any]
    records: list[dict[str, Any]] = field(default_factory=list)

    @property
    def messages(self) -> list[dict[str, Any]]:
        return [r for r in self.records if r.get("type") == "message"]

    def summary(self) -> dict[str, Any]:
        panes = self.header.get("panes") or {}
        return {
            "id": self.id,
            "path": str(self.path),
            "started": self.header.get("started"),
            "models": {key: (pane or {}).get("model") for key, pane in sorted(panes.items())},
            "messages": len(self.messages),
            "partial_replies": sum(1 for m in self.messages if m.get("partial")),
        }


def read_session(path: Path) -> Session:
    """Read a session file. A torn last line (the process was killed mid-write) is skipped."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise TranscriptError(f"{path}: no such session file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise TranscriptError(f"{path}: unreadable session file ({exc})") from None
    records: list[dict[str, Any]] = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            if number == len(lines):
                break
            raise TranscriptError(f"{path}:{number}: not a JSON record") from None
        if isinstance(record, dict):
            records.append(record)
    if not records or records[0].get("type") != "session":
        raise TranscriptError(f"{path}: not a zhbench session (no session record first)")
    header = records[0]
    latest: dict[str, int] = {}
    body: list[dict[str, Any]] = []
    for record in records[1:]:
        message_id = record.get("id") if record.get("type") == "message" else None
        if message_id is not None and message_id in latest:
            body[latest[message_id]] = record  # a later checkpoint of the same reply replaces the earlier one
            continue
        if message_id is not None:
            latest[message_id] = len(body)
        body.append(record)
    return Session(str(header.get("id") or path.stem), path, header, body)


def session_files(folder: Path) -> list[Path]:
    """Session files, oldest first."""
    if not folder.is_dir():
        return []
    return sorted(folder.glob(f"*{SUFFIX}"))


def list_sessions(folder: Path) -> Iterator[Session | TranscriptError]:
    for path in session_files(folder):
        try:
            yield read_session(path)
        except TranscriptError as exc:
            yield exc


def find_session(folder: Path, spec: str) -> Session:
    """A session by file path, id, unique id prefix, or ``latest``."""
    path = Path(spec).expanduser()
    if path.suffix == SUFFIX and path.exists():
        return read_session(path)
    files = session_files(folder)
    if spec == "latest":
        if not files:
            raise TranscriptError(f"no saved sessions in {folder}")
        return read_session(files[-1])
    matches = [p for p in files if p.stem == spec] or [p for p in files if p.stem.startswith(spec)]
    if len(matches) == 1:
        return read_session(matches[0])
    if not matches:
        raise TranscriptError(f"no session {spec!r} in {folder} (see `zhbench transcripts`)")
    raise TranscriptError(f"{spec!r} matches {len(matches)} sessions; give more of the id")


# --- export -------------------------------------------------------------------------------------


def to_json(session: Session) -> dict[str, Any]:
    return {"session": session.header, "records": session.records}


def to_markdown(session: Session) -> str:
    """Both panes turn by turn: each user message, then each pane's reply to it."""
    header = session.header
    models = dict(header.get("panes") or {})
    out = [f"# zhbench session {session.id}", "", f"Started {header.get('started', '?')}.", ""]
    for key in ("a", "b"):
        out.append(f"- Pane {key.upper()}: {_model_label(models.get(key))}")
    out.append("")
    turn_title: str | None = None
    for record in _turn_by_turn(session.records):
        kind = record.get("type")
        pane = str(record.get("pane", "?")).upper()
        if kind == "model":
            models[record.get("pane", "?")] = record
            out += [f"*Pane {pane} now runs {_model_label(record)}.*", ""]
        elif kind == "clear":
            out += [f"*Pane {pane}: conversation cleared.*", ""]
        elif kind == "message" and record.get("role") == "user":
            title = f"## Turn {record.get('turn', '?')}"
            if title != turn_title:
                target = " and ".join(p.upper() for p in record.get("to") or [record.get("pane", "?")])
                out += [title, "", f"**You** (to {target}):", "", _quote(record.get("content", "")), ""]
                turn_title = title
        elif kind == "message":
            note = " (partial)" if record.get("partial") else ""
            out += [f"**{pane} · {record.get('model', '?')}**{note}:", "", _quote(record.get("content", ""))]
            stats = record.get("stats")
            if stats:
                out.append("")
                out.append(f"<sub>{stats_summary(stats)}</sub>")
            if record.get("error"):
                out += ["", f"> error: {record['error']}"]
            out.append("")
    return "\n".join(out).rstrip() + "\n"


def _turn_by_turn(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Records with each turn's messages together: the user's first, then pane A's reply, then B's.

    Panes finish in either order; model and clear records stay where they happened.
    """

    def key(record: dict[str, Any]) -> tuple[int, int, str]:
        turn = record.get("turn")
        return (turn if isinstance(turn, int) else 0, 0 if record.get("role") == "user" else 1, str(record.get("pane")))

    ordered: list[dict[str, Any]] = []
    run: list[dict[str, Any]] = []
    for record in records:
        if record.get("type") == "message":
            run.append(record)
            continue
        ordered += sorted(run, key=key)
        run = []
        ordered.append(record)
    return ordered + sorted(run, key=key)


def _model_label(pane: Mapping[str, Any] | None) -> str:
    if not pane or not pane.get("model"):
        return "no model"
    return f"{pane['model']} ({pane.get('family', '?')}, {pane.get('path', '?')})"


def _quote(text: str) -> str:
    return "\n".join("> " + line if line else ">" for line in (text or "").split("\n"))
