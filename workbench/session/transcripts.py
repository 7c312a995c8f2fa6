"""Transcripts: every session saved as JSON lines while it happens, listed and exported later.

A session file holds the typed records of ``records.py``: one ``session`` record, then ``message``,
``model``, ``clear`` and ``choice`` records. Every record is flushed and fsynced as it is written.

A reply is written more than once while it streams: each checkpoint is a ``message`` record with the
same ``id`` and ``partial: true``, and the last record of an id is the one that counts. So a reply cut
off by a crash is still on disk, marked partial; a reply stopped by the user keeps ``partial: true``.

Regenerating a reply writes another reply for the same turn, whose ``regenerates`` names the version it
was asked in place of; the conversation goes on from the newest version, or from the one a later
``choice`` record names. Exports show the other versions marked as set aside, never as part of the talk.

Editing an earlier user message writes a user message whose ``edits`` names the one it replaces: a branch
starts there, and the conversation goes on from it, or from the branch a later ``branch`` record names.
Exports show the conversation as shown (each edited message says which of its branches it is), or every
branch with those not on show marked (``Session.all_branches``).
"""

from __future__ import annotations

import json
import os
import secrets
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO, TypeGuard

from zhbench.engines.types import stats_summary
from zhbench.plain.safe_text import json_text, literal_markdown, literal_quote
from zhbench.workbench.session.file_writes import write_atomically
from zhbench.workbench.session.output_formats import OutputFormat
from zhbench.workbench.session.records import (
    BodyRecord,
    BranchRecord,
    ChoiceRecord,
    ClearRecord,
    MessageRecord,
    ModelRecord,
    PaneModel,
    RecordError,
    SessionRecord,
    body_record_from_json,
)

if TYPE_CHECKING:
    from zhbench.workbench.session.branches import BranchPlace

SUFFIX = ".jsonl"
#: what an export says became of a session's damaged lines
EXPORT_DAMAGE = "left out of the export"


def _ends_a_line(path: Path) -> bool:
    """Whether a file is empty or its last byte ends a line."""
    with path.open("rb") as file:
        if file.seek(0, os.SEEK_END) == 0:
            return True
        file.seek(-1, os.SEEK_END)
        return file.read(1) == b"\n"


class TranscriptError(Exception):
    """A session that cannot be found or read."""


def now_iso() -> str:
    return datetime.now(UTC).astimezone().isoformat(timespec="milliseconds")


def new_session_id() -> str:
    """``YYYYMMDD-HHMMSS-xxxxxx``: sortable by start time, unique, and safe as a file name anywhere."""
    return f"{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(3)}"


def json_line(data: dict[str, Any]) -> str:
    """One record as one line: readable Chinese, and no character inside that any reader takes for a line
    end or a terminal for a command."""
    return json_text(data) + "\n"


class TranscriptWriter:
    """Appends the records of one session to its file, each flushed and fsynced before returning."""

    def __init__(
        self,
        folder: Path,
        panes: Mapping[str, PaneModel | None],
        session_id: str | None = None,
        *,
        arena: bool = False,
    ) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.session_id = session_id or new_session_id()
        self.path = folder / f"{self.session_id}{SUFFIX}"
        self.header = SessionRecord(id=self.session_id, started=now_iso(), panes=dict(panes), arena=arena)
        self._file: TextIO = self.path.open("a", encoding="utf-8")
        try:
            self._write_line(self.header.to_json())
        except OSError:  # a full disk from the start: leave no empty session file behind
            self._file.close()
            self.path.unlink(missing_ok=True)
            raise

    @classmethod
    def resume(cls, session: Session) -> TranscriptWriter:
        """Append to a saved session's own file. A last line cut off by a kill is ended first, so the next
        record starts a line of its own rather than joining the damage."""
        writer = cls.__new__(cls)
        writer.session_id, writer.path, writer.header = session.id, session.path, session.header
        writer._file = session.path.open("a", encoding="utf-8")
        try:
            if not _ends_a_line(session.path):
                writer._file.write("\n")
        except OSError:
            writer._file.close()
            raise
        return writer

    def write(self, record: BodyRecord) -> None:
        self._write_line(record.to_json())

    def _write_line(self, data: dict[str, Any]) -> None:
        self._file.write(json_line(data))
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
    #: lines that could not be read (cut by a kill or a full disk, overwritten): skipped, the rest kept
    damaged_lines: int = 0
    #: exports show every branch of an edited message, not only the conversation as shown
    all_branches: bool = False

    @property
    def messages(self) -> list[MessageRecord]:
        return [r for r in self.records if isinstance(r, MessageRecord)]

    def damage_note(self, fate: str) -> str | None:
        """What a reader is told of the lines that could not be read (and their ``fate``), or None when none."""
        if not self.damaged_lines:
            return None
        return f"{self.damaged_lines} damaged line(s) of this session could not be read: {fate}"

    def summary(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "path": str(self.path),
            "started": self.header.started,
            "models": {name: pane.model if pane else None for name, pane in sorted(self.header.panes.items())},
            "messages": len(self.messages),
            "partial_replies": sum(1 for m in self.messages if m.partial),
        } | ({"damaged_lines": self.damaged_lines} if self.damaged_lines else {})


def read_session(path: Path) -> Session:
    """Read a session file line by line (bytes split at ``\\n`` only). A line that cannot be read (torn by a
    kill, cut inside a character by a full disk, overwritten) is skipped and counted, never the session."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise TranscriptError(f"{path}: no such session file") from None
    except OSError as exc:
        raise TranscriptError(f"{path}: unreadable session file ({exc.strerror or exc})") from None
    objects, damaged = json_objects(data)
    if not objects or objects[0].get("type") != "session":
        raise TranscriptError(f"{path}: not a zhbench session (no session record first)")
    header = SessionRecord.from_json(objects[0])
    latest: dict[str, int] = {}
    body: list[BodyRecord] = []
    for found in objects[1:]:
        try:
            record = body_record_from_json(found)
        except RecordError:
            continue  # a record type a later zhbench wrote: not this version's to show
        message_id = record.id if isinstance(record, MessageRecord) else None
        if message_id is not None and message_id in latest:
            body[latest[message_id]] = record  # a later checkpoint of the same reply replaces the earlier one
            continue
        if message_id is not None:
            latest[message_id] = len(body)
        body.append(record)
    return Session(header.id or path.stem, path, header, body, damaged)


def json_objects(data: bytes) -> tuple[list[dict[str, Any]], int]:
    """The JSON objects of a JSON-lines file's bytes (split at ``\\n`` only), and how many lines were not one:
    torn by a kill, cut inside a character by a full disk, overwritten. Those are skipped, never the rest."""
    objects: list[dict[str, Any]] = []
    damaged = 0
    for line in data.split(b"\n"):
        if not line.strip():
            continue
        try:
            found = json.loads(line.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
            damaged += 1
            continue
        if isinstance(found, dict):
            objects.append(found)
        else:
            damaged += 1
    return objects, damaged


def session_files(folder: Path) -> list[Path]:
    """Session files, oldest first (an empty file, which a full disk can leave, holds no session)."""
    if not folder.is_dir():
        return []
    return sorted(path for path in folder.glob(f"*{SUFFIX}") if _has_content(path))


def _has_content(path: Path) -> bool:
    try:
        return path.stat().st_size > 0
    except OSError:
        return True  # listed, and read as unreadable with the reason


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
    """Write a session into ``folder`` in every one of ``EXPORT_FORMATS``; return the paths."""
    session = read_session(session_file)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for form in EXPORT_FORMATS.values():
        path = folder / f"{session.id}{form.suffix}"
        write_atomically(path, form.write(session))
        paths.append(path)
    return paths


def export_descriptions() -> str:
    """The export formats as a reader names them: ``Markdown and JSON``."""
    names = [form.description for form in EXPORT_FORMATS.values()]
    return " and ".join(names) if len(names) < 3 else ", ".join(names[:-1]) + " and " + names[-1]


def to_json_text(session: Session) -> str:
    """The JSON export, every character that could act on a terminal written as an escape."""
    return json_text(to_json(session), indent=2) + "\n"


@dataclass(frozen=True)
class ReplyVersion:
    """Where a reply stands among the versions of it that regenerating made."""

    number: int  # 1, 2, … in the order they were made
    count: int
    #: the number of the version the conversation went on from
    kept: int

    @property
    def in_conversation(self) -> bool:
        return self.number == self.kept

    def fate(self) -> str:
        """What became of a version the conversation did not go on from."""
        which = f"Version {self.number} of {self.count}"
        if self.number < self.kept:
            return f"{which}: replaced by regeneration"
        return f"{which}: regenerated, not kept (the conversation went on from version {self.kept})"

    def to_json(self) -> dict[str, Any]:
        return {"number": self.number, "of": self.count, "in_conversation": self.in_conversation}


def reply_versions(records: Sequence[BodyRecord]) -> dict[str, ReplyVersion]:
    """Each reply that has other versions, by id: its place among them, and which one the conversation went
    on from (the one a ``choice`` record named last, else the newest). A reply never regenerated is left out."""
    first_version = _first_versions(records)
    versions: dict[str, list[str]] = {}
    kept: dict[str, str] = {}
    for record in records:
        if isinstance(record, MessageRecord) and record.role == "assistant":
            first = first_version[record.id]
            versions.setdefault(first, []).append(record.id)
            kept[first] = record.id
        elif isinstance(record, ChoiceRecord) and record.reply in first_version:
            kept[first_version[record.reply]] = record.reply
    return {
        reply: ReplyVersion(number, len(ids), ids.index(kept[first]) + 1)
        for first, ids in versions.items()
        if len(ids) > 1
        for number, reply in enumerate(ids, 1)
    }


def _first_versions(records: Sequence[BodyRecord]) -> dict[str, str]:
    """Each reply's id -> the id of the first version of it (itself, unless regenerating made it)."""
    first_version: dict[str, str] = {}
    for record in records:
        if isinstance(record, MessageRecord) and record.role == "assistant":
            regenerates = record.regenerates
            first_version[record.id] = first_version.get(regenerates, regenerates) if regenerates else record.id
    return first_version


@dataclass(frozen=True)
class Branches:
    """The branches of a session's edited messages, as an export shows them."""

    #: each user message that begins a branch, by id: its place at its fork
    places: dict[str, BranchPlace]
    #: the ids of the messages and replies on branches not on show (every version of such a reply)
    set_aside: frozenset[str]

    @classmethod
    def of(cls, session: Session) -> Branches:
        from zhbench.workbench.session.replay import replay  # a pane's state: not needed by --help, or listing

        replayed = replay(session.header, session.records)
        first_version = _first_versions(session.records)
        firsts = {first_version[i] for i in replayed.set_aside if i in first_version}
        versions = {reply for reply, first in first_version.items() if first in firsts}
        return cls(replayed.branches, frozenset(replayed.set_aside | versions))

    def shown(self, session: Session) -> list[BodyRecord]:
        """The records an export shows: every one, or those of the conversation as shown."""
        if session.all_branches:
            return list(session.records)
        return [r for r in session.records if not (isinstance(r, MessageRecord) and r.id in self.set_aside)]


def to_json(session: Session) -> dict[str, Any]:
    """The session record and every record of the conversation as shown (of every branch when
    ``all_branches``); a reply with other versions says which it is (``version``), a message that begins a
    branch which (``branch``), and a message on a branch not on show says so (``set_aside``)."""
    versions = reply_versions(session.records)
    branches = Branches.of(session)
    records = [
        record.to_json()
        | ({"version": versions[record.id].to_json()} if record.id in versions else {})
        | ({"branch": branches.places[record.id].to_json()} if record.id in branches.places else {})
        | ({"set_aside": True} if record.id in branches.set_aside else {})
        if isinstance(record, MessageRecord)
        else record.to_json()
        for record in branches.shown(session)
    ]
    damaged = {"damaged_lines": session.damaged_lines} if session.damaged_lines else {}
    return {"session": session.header.to_json(), **damaged, "records": records}


def to_markdown(session: Session) -> str:
    """Every pane turn by turn: each user message, then each pane's reply to it (a regenerated reply's other
    versions folded beside it, marked); the conversation as shown, or every branch with those not on show
    marked (``all_branches``). A pane's system prompt is shown before the first reply it applies to."""
    header = session.header
    models = dict(header.panes)
    out = [f"# zhbench session {literal_markdown(session.id)}", "", f"Started {literal_markdown(header.started)}.", ""]
    damage = session.damage_note(EXPORT_DAMAGE)
    if damage:
        out += [f"*{damage}.*", ""]
    for name in sorted(models):
        out.append(f"- Pane {literal_markdown(name.upper())}: {_model_label(models[name])}")
    out.append("")
    versions = reply_versions(session.records)
    branches = Branches.of(session)
    turn_title: str | None = None
    system_prompts: dict[str, str] = {}  # each pane's system prompt so far
    for record in _swaps_paired(_turn_by_turn(branches.shown(session))):
        if isinstance(record, tuple):
            out += [_swap_markdown(*record), ""]
            continue
        pane = record.pane.upper()
        if isinstance(record, ModelRecord):
            models[record.pane] = record.model
            change = _model_change(record)
            out += [f"*Pane {literal_markdown(pane)} now runs {_model_label(record.model)}{change}.*", ""]
        elif isinstance(record, ClearRecord):
            out += [f"*Pane {literal_markdown(pane)}: conversation cleared.*", ""]
        elif record.role == "user":
            title = f"## Turn {record.turn}"
            if title != turn_title:
                target = " and ".join(p.upper() for p in record.to or (record.pane,))
                place = _branch_note(branches.places.get(record.id), record.id in branches.set_aside, session)
                out += [title, "", f"**You** (to {literal_markdown(target)}{place}):", ""]
                out += [literal_quote(record.content), ""]
                turn_title = title
        else:
            if record.id not in branches.set_aside:
                out += _system_prompt_change(record, system_prompts)
            version = versions.get(record.id)
            if version is None or version.in_conversation:
                out += _reply_markdown(record, version, set_aside=record.id in branches.set_aside)
            else:  # folded: a reader of the conversation skips it, and can open it (only our words in the tags)
                out += [f"<details><summary>{version.fate()}</summary>", "", *_reply_markdown(record, None)]
                out += ["</details>", ""]
    return "\n".join(out).rstrip() + "\n"


def _branch_note(place: BranchPlace | None, set_aside: bool, session: Session) -> str:
    """What a user message says of its branch: which it begins where it was edited, and whether it is on show."""
    if place is None:
        return "; on a branch not shown" if set_aside else ""
    note = f"; branch {place.number} of {place.count}"
    if not place.on_show:
        return note + ", not shown"
    return note if session.all_branches else note + " (`zhbench export --all-branches` shows the others)"


def _system_prompt_change(record: MessageRecord, system_prompts: dict[str, str]) -> list[str]:
    """The pane's system prompt, where a reply is the first it applies to (the first one set, or another)."""
    prompt = (record.params or {}).get("system_prompt")
    if not isinstance(prompt, str) or prompt == system_prompts.get(record.pane, ""):
        return []
    system_prompts[record.pane] = prompt
    pane = literal_markdown(record.pane.upper())
    if not prompt:
        return [f"*Pane {pane}: no system prompt from here on.*", ""]
    return [f"*System prompt of pane {pane} from here on:*", "", literal_quote(prompt), ""]


def _reply_markdown(record: MessageRecord, version: ReplyVersion | None, *, set_aside: bool = False) -> list[str]:
    """A reply's lines: who said it (and whether it is on a branch not shown), its thinking and answer as
    quotes, its stats and error."""
    notes = [f"version {version.number} of {version.count}"] if version else []
    notes += ["on a branch not shown"] * set_aside
    notes += ["partial"] * record.partial
    note = f" ({', '.join(notes)})" if notes else ""
    out = [f"**{literal_markdown(record.pane.upper())} · {literal_markdown(record.model or '?')}**{note}:", ""]
    if record.reasoning:
        out += ["*Thinking:*", "", literal_quote(record.reasoning), "", "*Answer:*", ""]
    out.append(literal_quote(record.content))
    if record.stats:
        out.append("")
        out.append(f"<sub>{stats_summary(record.stats, record.params)}</sub>")
    if record.error:
        out += ["", f"> error: {literal_markdown(record.error)}"]
    out.append("")
    return out


def _model_change(record: ModelRecord) -> str:
    """How a pane's conversation fared when it got another model (a swap takes the conversation along)."""
    if record.swapped:
        return ", swapped in with its conversation"
    return ", carrying on the conversation" if record.kept_conversation else ": a new conversation"


def _swaps_paired(
    records: list[MessageRecord | ModelRecord | ClearRecord],
) -> Iterator[MessageRecord | ModelRecord | ClearRecord | tuple[ModelRecord, ModelRecord]]:
    """The records, with the two that a swap of two panes writes one after the other as one pair (a swap's
    record without its other half, as damage can leave it, stays on its own)."""
    index = 0
    while index < len(records):
        record = records[index]
        following = records[index + 1] if index + 1 < len(records) else None
        if _swapped(record) and _swapped(following) and following.pane != record.pane:
            yield record, following
            index += 2
        else:
            yield record
            index += 1


def _swapped(record: BodyRecord | None) -> TypeGuard[ModelRecord]:
    return isinstance(record, ModelRecord) and record.swapped


def _swap_markdown(one: ModelRecord, other: ModelRecord) -> str:
    """A swap of two panes: each model moved with its conversation, so who says what next is clear."""
    first, second = literal_markdown(one.pane.upper()), literal_markdown(other.pane.upper())
    return (
        f"*Panes {first} and {second} swapped, each model with its conversation: {first} now runs "
        f"{_model_label(one.model)}, {second} runs {_model_label(other.model)}.*"
    )


def _turn_by_turn(records: list[BodyRecord]) -> list[MessageRecord | ModelRecord | ClearRecord]:
    """Records with each turn's messages together: the user's first, then each pane's reply in pane order.

    Panes finish in either order; model and clear records stay where they happened. Choice and branch
    records are left out: what they say shows on the reply versions and branches they chose.
    """
    ordered: list[MessageRecord | ModelRecord | ClearRecord] = []
    run: list[MessageRecord] = []
    for record in records:
        if isinstance(record, ChoiceRecord | BranchRecord):
            continue
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
    return literal_markdown(pane.label()) if pane and pane.model else "no model"


#: the formats a session is exported in: ``zhbench export --format``'s choices, and every file the app's
#: export (Ctrl+S) and the chat's ``/save`` write
EXPORT_FORMATS: dict[str, OutputFormat[Session]] = {
    "md": OutputFormat(to_markdown, (".md",), "Markdown"),
    "json": OutputFormat(to_json_text, (".json",), "JSON"),
}
