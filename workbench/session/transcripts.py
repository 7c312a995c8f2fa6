"""Transcripts: every session saved as JSON lines while it happens, listed and exported later.

A session file holds the typed records of ``records.py``: one ``session`` record, then ``message``,
``model`` and ``clear`` records. Every record is flushed and fsynced as it is written.

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
from workbench.session.records import (
    BodyRecord,
    ClearRecord,
    MessageRecord,
    ModelRecord,
    PaneModel,
    RecordError,
    SessionRecord,
    body_record_from_json,
)

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

    def __init__(self, folder: Path, panes: Mapping[str, PaneModel | None], session_id: str | None = None) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.session_id = session_id or new_session_id()
        self.path = folder / f"{self.session_id}{SUFFIX}"
        self._file: TextIO = self.path.open("a", encoding="utf-8")
        self.header = SessionRecord(id=self.session_id, started=now_iso(), panes=dict(panes))
        self._write_line(self.header.to_json())

    def write(self, record: BodyRecord) -> None:
        self._write_line(record.to_json())

    def _write_line(self, data: dict[str, Any]) -> None:
        self._file.write(json.dumps(data, ensure_ascii=False) + "\n")
        self._file.flush()
        os.fsync(self._file.fileno())

    def close(self) -> None:
        self._file.close()


@dataclass
class Session:
    """A saved session read back: its header, and its records with each message in its last version."""

    id: str
    path: Path
    header: SessionRecord
    records: list[BodyRecord] = field(default_factory=list)

    @property
    def messages(self) -> list[MessageRecord]:
        return [r for r in self.records if isinstance(r, MessageRecord)]

    def summary(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "path": str(self.path),
            "started": self.header.started,
            "models": {name: pane.model if pane else None for name, pane in sorted(self.header.panes.items())},
            "messages": len(self.messages),
            "partial_replies": sum(1 for m in self.messages if m.partial),
        }


def read_session(path: Path) -> Session:
    """Read a session file. A torn last line (the process was killed mid-write) is skipped."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise TranscriptError(f"{path}: no such session file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise TranscriptError(f"{path}: unreadable session file ({exc})") from None
    objects: list[dict[str, Any]] = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
        except json.JSONDecodeError:
            if number == len(lines):
                break
            raise TranscriptError(f"{path}:{number}: not a JSON record") from None
        if isinstance(data, dict):
            objects.append(data)
    if not objects or objects[0].get("type") != "session":
        raise TranscriptError(f"{path}: not a zhbench session (no session record first)")
    header = SessionRecord.from_json(objects[0])
    latest: dict[str, int] = {}
    body: list[BodyRecord] = []
    for data in objects[1:]:
        try:
            record = body_record_from_json(data)
        except RecordError:
            continue  # a record type a later zhbench wrote: not this version's to show
        message_id = record.id if isinstance(record, MessageRecord) else None
        if message_id is not None and message_id in latest:
            body[latest[message_id]] = record  # a later checkpoint of the same reply replaces the earlier one
            continue
        if message_id is not None:
            latest[message_id] = len(body)
        body.append(record)
    return Session(header.id or path.stem, path, header, body)


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


def export_session(session_file: Path, folder: Path) -> list[Path]:
    """Write a session as Markdown and JSON into ``folder``; return both paths."""
    session = read_session(session_file)
    folder.mkdir(parents=True, exist_ok=True)
    markdown = folder / f"{session.id}.md"
    markdown.write_text(to_markdown(session), encoding="utf-8")
    as_json = folder / f"{session.id}.json"
    as_json.write_text(json.dumps(to_json(session), ensure_ascii=False, indent=2), encoding="utf-8")
    return [markdown, as_json]


def to_json(session: Session) -> dict[str, Any]:
    return {"session": session.header.to_json(), "records": [record.to_json() for record in session.records]}


def to_markdown(session: Session) -> str:
    """Every pane turn by turn: each user message, then each pane's reply to it."""
    header = session.header
    models = dict(header.panes)
    out = [f"# zhbench session {session.id}", "", f"Started {header.started}.", ""]
    for name in sorted(models):
        out.append(f"- Pane {name.upper()}: {_model_label(models[name])}")
    out.append("")
    turn_title: str | None = None
    for record in _turn_by_turn(session.records):
        pane = record.pane.upper()
        if isinstance(record, ModelRecord):
            models[record.pane] = record.model
            out += [f"*Pane {pane} now runs {_model_label(record.model)}.*", ""]
        elif isinstance(record, ClearRecord):
            out += [f"*Pane {pane}: conversation cleared.*", ""]
        elif record.role == "user":
            title = f"## Turn {record.turn}"
            if title != turn_title:
                target = " and ".join(p.upper() for p in record.to or (record.pane,))
                out += [title, "", f"**You** (to {target}):", "", _quote(record.content), ""]
                turn_title = title
        else:
            note = " (partial)" if record.partial else ""
            out += [f"**{pane} · {record.model or '?'}**{note}:", ""]
            if record.reasoning:
                out += ["*Thinking:*", "", _quote(record.reasoning), "", "*Answer:*", ""]
            out.append(_quote(record.content))
            if record.stats:
                out.append("")
                out.append(f"<sub>{stats_summary(record.stats)}</sub>")
            if record.error:
                out += ["", f"> error: {record.error}"]
            out.append("")
    return "\n".join(out).rstrip() + "\n"


def _turn_by_turn(records: list[BodyRecord]) -> list[BodyRecord]:
    """Records with each turn's messages together: the user's first, then each pane's reply in pane order.

    Panes finish in either order; model and clear records stay where they happened.
    """
    ordered: list[BodyRecord] = []
    run: list[MessageRecord] = []
    for record in records:
        if isinstance(record, MessageRecord):
            run.append(record)
            continue
        ordered.extend(_in_turn_order(run))
        run = []
        ordered.append(record)
    ordered.extend(_in_turn_order(run))
    return ordered


def _in_turn_order(messages: list[MessageRecord]) -> list[MessageRecord]:
    return sorted(messages, key=lambda m: (m.turn, 0 if m.role == "user" else 1, m.pane))


def _model_label(pane: PaneModel | None) -> str:
    return pane.label() if pane and pane.model else "no model"


def _quote(text: str) -> str:
    return "\n".join("> " + line if line else ">" for line in (text or "").split("\n"))
