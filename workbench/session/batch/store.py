"""A batch run's folder: what the run is for (``run.json``) and every answer as it finishes (``answers.jsonl``).

``answers.jsonl`` holds the transcript's own record types, one JSON object a line, each flushed and fsynced
before the next answer starts: a ``model`` record (``records.ModelRecord``, its pane the model's name) when
a model is loaded, an ``answer`` record wrapping the reply's ``records.MessageRecord`` with the item, repeat
and seed it answers, and a ``load_failure`` record when a model could not be loaded.

Why JSON lines with fsync rather than SQLite: the records are the transcripts' records written the same way
(``transcripts.json_line``), so one reader and one set of types serve both; one answer costs one append and
one fsync; and the file can be read, even by ``tail -f``, while a run writes it. What SQLite would add is a
unique key, which is kept here instead by one writer per folder (an exclusive ``flock``, which the kernel
drops when the process dies, even by ``kill -9``), the runner skipping every key already answered, and the
reader keeping the last record of each key. A kill can tear the last line only; the writer cuts that torn
tail off before it appends, and the answer is made again.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Literal, Self

from zhbench.engines.errors import ZhbenchError
from zhbench.plain.safe_text import json_text
from zhbench.workbench.session.batch.prompts import PromptItem
from zhbench.workbench.session.file_writes import write_atomically
from zhbench.workbench.session.records import MessageRecord, ModelRecord, PaneModel, RecordError
from zhbench.workbench.session.transcripts import json_line, json_objects

RUN_FILE = "run.json"
ANSWERS_FILE = "answers.jsonl"
LOCK_FILE = ".lock"
#: 1: the first version of run.json and of the answer records; 2: each answer carries the hash of the prompt
#: it answers and of the run's settings (``prompt_hash``, ``settings_hash``), which a rerun matches it on
SCHEMA = 2

#: an answer's place in the run: (model, item id, repeat index)
AnswerKey = tuple[str, str, int]


class RunFolderError(ZhbenchError):
    """A run folder that cannot be used: another run's, busy, or unreadable."""


@dataclass(frozen=True)
class RunSettings:
    """What a run is for, written when it starts so that a rerun can check it is the same run."""

    source: str
    items: tuple[PromptItem, ...]
    models: tuple[str, ...]
    #: the decoding options as given on the command line (preset, --set, --system, --seed, ...)
    options: Mapping[str, Any]
    repeat: int
    #: the seed each item's seed is derived from: ``--seed``, or one drawn when the run began
    seed: int
    created: str
    schema: int = SCHEMA

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": self.schema,
            "source": self.source,
            "created": self.created,
            "models": list(self.models),
            "options": dict(self.options),
            "repeat": self.repeat,
            "seed": self.seed,
            "items": [item.to_json() for item in self.items],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RunSettings:
        items = data.get("items")
        models = data.get("models")
        options = data.get("options")
        if not isinstance(items, list) or not isinstance(models, list) or not isinstance(options, dict):
            raise ValueError("no items, models or options")
        return cls(
            source=str(data.get("source") or "?"),
            items=tuple(PromptItem.from_json(item, fallback_id="?") for item in items),
            models=tuple(str(model) for model in models),
            options=options,
            repeat=int(data.get("repeat", 1)),
            seed=int(data.get("seed", 0)),
            created=str(data.get("created") or "?"),
            schema=int(data.get("schema", SCHEMA)),
        )

    def settings_hash(self) -> str:
        """A digest of what decides an answer besides its prompt: the decoding options and the run's seed."""
        return _digest({"options": dict(self.options), "seed": self.seed})

    def prompt_hashes(self) -> dict[str, str]:
        """Each item's id and the digest of the conversation it asks to be answered."""
        return {item.id: prompt_hash(item) for item in self.items}

    def differences(self, other: RunSettings) -> list[str]:
        """How ``other`` is a different run from this one, models and added items aside: a run may take more
        models, and more items (a larger ``--limit``, lines added to its file) beside every item it has."""
        found = []
        given = {item.id: item.to_json() for item in other.items}
        changed = [item.id for item in self.items if given.get(item.id) != item.to_json()]
        if changed:
            why = "changed" if changed[0] in given else "not among them now"
            found.append(
                f"the prompts differ ({len(self.items)} items recorded, {len(other.items)} now; item "
                f"{changed[0]!r} {why})"
            )
        if self.repeat != other.repeat:
            found.append(f"--repeat {self.repeat} recorded, {other.repeat} now")
        for name in sorted(set(self.options) | set(other.options)):
            recorded, now = self.options.get(name), other.options.get(name)
            if recorded != now:
                found.append(f"{name}: {recorded!r} recorded, {now!r} now")
        return found


#: the stats a report computes with: an answer where one holds anything but a number (or nothing) is damaged
_NUMERIC_STATS = (
    "prompt_tokens",
    "new_tokens",
    "reasoning_tokens",
    "ttft_s",
    "tokens_per_s",
    "total_s",
    "context_tokens",
    "context_window",
    "dropped_messages",
)


def check_stats(stats: object) -> None:
    """Refuse (``RecordError``) a reply's stats that a report cannot compute with: not a JSON object, or a
    count or time that is not a finite number."""
    if stats is None:
        return
    if not isinstance(stats, Mapping):
        raise RecordError(f"its stats are {type(stats).__name__}, not an object")
    for name in _NUMERIC_STATS:
        value = stats.get(name)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise RecordError(f"its stats' {name} is {str(value)[:20]!r}, not a number")


def prompt_hash(item: PromptItem) -> str:
    """A digest of the conversation an item asks to be answered."""
    return _digest([dict(message) for message in item.messages])


def _digest(data: object) -> str:
    canonical = json.dumps(data, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:16]


@dataclass(frozen=True)
class AnswerRecord:
    """One model's answer to one item (or why it failed), the reply as the transcripts record it."""

    item: str
    repeat: int
    seed: int
    #: the reply: its pane and model the model's name, its params the settings used, seed included
    message: MessageRecord
    #: what it answers: the prompt's and the run's settings' digests (None in a record written before schema 2)
    prompt_hash: str | None = None
    settings_hash: str | None = None
    schema: int = SCHEMA
    type: Literal["answer"] = "answer"

    @property
    def model(self) -> str:
        return self.message.pane

    @property
    def key(self) -> AnswerKey:
        return (self.model, self.item, self.repeat)

    @property
    def failed(self) -> bool:
        return self.message.error is not None

    def to_json(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "item": self.item,
            "repeat": self.repeat,
            "seed": self.seed,
            "prompt_hash": self.prompt_hash,
            "settings_hash": self.settings_hash,
            "schema": self.schema,
            "message": self.message.to_json(),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> AnswerRecord:
        message = data.get("message")
        if not isinstance(message, Mapping):
            raise RecordError("an answer without its message")
        check_stats(message.get("stats"))
        hashes = [
            data.get(name) if isinstance(data.get(name), str) else None for name in ("prompt_hash", "settings_hash")
        ]
        return cls(
            item=str(data.get("item")),
            repeat=int(data.get("repeat", 0)),
            seed=int(data.get("seed", 0)),
            message=MessageRecord.from_json(message),
            prompt_hash=hashes[0],
            settings_hash=hashes[1],
            schema=data["schema"] if isinstance(data.get("schema"), int) else 1,
        )

    def answers(self, prompts: Mapping[str, str], settings_hash: str) -> bool:
        """Whether this is an answer to the prompt of its item id in ``prompts``, under the settings of that
        digest. A record from before schema 2 carries no digests: it is taken as answering them (its run.json,
        checked against the run, vouches for it)."""
        if self.prompt_hash is None and self.settings_hash is None:
            return self.item in prompts
        return prompts.get(self.item) == self.prompt_hash and self.settings_hash == settings_hash


@dataclass(frozen=True)
class LoadFailureRecord:
    """A model that could not be loaded (or whose settings it refused): none of its items were answered."""

    model: str
    time: str
    error: str
    type: Literal["load_failure"] = "load_failure"

    def to_json(self) -> dict[str, Any]:
        return {"type": self.type, "model": self.model, "time": self.time, "error": self.error}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> LoadFailureRecord:
        return cls(model=str(data.get("model")), time=str(data.get("time") or ""), error=str(data.get("error")))


BatchRecord = ModelRecord | AnswerRecord | LoadFailureRecord


@dataclass
class RunLog:
    """A run folder read back: its settings and, per key, model and item, the last record written."""

    folder: Path
    settings: RunSettings
    #: what each model was when it was last loaded
    models: dict[str, PaneModel] = field(default_factory=dict)
    answers: dict[AnswerKey, AnswerRecord] = field(default_factory=dict)
    #: models whose last attempt to load failed
    load_failures: dict[str, LoadFailureRecord] = field(default_factory=dict)
    #: lines that could not be read (overwritten, cut by a full disk): skipped
    damaged_lines: int = 0

    def answered(self) -> set[AnswerKey]:
        """The keys with an answer to this run's prompt under its settings: a failed one does not count, so a
        rerun tries it again."""
        prompts, settings_hash = self.settings.prompt_hashes(), self.settings.settings_hash()
        return {
            key for key, record in self.answers.items() if not record.failed and record.answers(prompts, settings_hash)
        }


def read_run(folder: Path) -> RunLog:
    """A run folder as it is now: finished, still running, or killed part-way."""
    settings = _read_settings(folder)
    if settings is None:
        raise RunFolderError(f"{folder}: not a batch run folder (no {RUN_FILE})")
    log = RunLog(folder, settings)
    prompts, settings_hash = settings.prompt_hashes(), settings.settings_hash()
    records, log.damaged_lines = _read_records(folder)
    for record in records:
        if isinstance(record, AnswerRecord):
            if record.prompt_hash is None and record.item in prompts:  # before schema 2: its run.json vouches
                record = replace(record, prompt_hash=prompts[record.item], settings_hash=settings_hash)
            log.answers[record.key] = record
        elif isinstance(record, LoadFailureRecord):
            log.load_failures[record.model] = record
        elif record.model is not None:
            log.models[record.pane] = record.model
            log.load_failures.pop(record.pane, None)  # loaded after all, by a later attempt
    return log


def read_lines(path: Path) -> tuple[list[dict[str, Any]], int]:
    """The JSON objects of a JSON-lines file written by a store, and how many lines were damaged; none when it
    does not exist yet. A last line without its newline is being written now, or was torn by a kill: skipped."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return [], 0
    except OSError as exc:
        raise RunFolderError(f"{path}: unreadable ({exc.strerror or exc})") from None
    return json_objects(data[: data.rfind(b"\n") + 1])


def _read_records(folder: Path) -> tuple[list[BatchRecord], int]:
    """The records of a run folder's answers file, and how many lines of it could not be read."""
    objects, damaged = read_lines(folder / ANSWERS_FILE)
    records: list[BatchRecord] = []
    for found in objects:
        try:
            records.append(_record_from_json(found))
        except (RecordError, ValueError, TypeError):
            damaged += 1
    return records, damaged


def _record_from_json(data: Mapping[str, Any]) -> BatchRecord:
    kind = data.get("type")
    if kind == "answer":
        return AnswerRecord.from_json(data)
    if kind == "model":
        return ModelRecord.from_json(data)
    if kind == "load_failure":
        return LoadFailureRecord.from_json(data)
    raise RecordError(f"unknown record type {kind!r}")


def _settings_text(settings: RunSettings) -> str:
    """``run.json`` indented: a person reads it to see what a run was."""
    return json_text(settings.to_json(), indent=2) + "\n"


def _read_settings(folder: Path) -> RunSettings | None:
    try:
        text = (folder / RUN_FILE).read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise RunFolderError(f"{folder / RUN_FILE}: unreadable ({exc})") from None
    try:
        return RunSettings.from_json(json.loads(text))
    except (ValueError, TypeError, AttributeError) as exc:
        raise RunFolderError(f"{folder / RUN_FILE}: not a batch run's settings ({exc})") from None


class BatchStore:
    """The one writer of a run folder: holds its lock, records its settings, appends its answers durably.

    Use as a context manager. ``write`` may be called from several threads.
    """

    def __init__(self, folder: Path, settings: RunSettings) -> None:
        """Take ``folder`` for ``settings``: a new folder is started; one holding the same run (the same
        prompts, options and repeats) is continued, any model or item not yet in it added; another run's is
        refused."""
        if not (folder / RUN_FILE).exists() and any(p.name not in (LOCK_FILE, ANSWERS_FILE) for p in _entries(folder)):
            raise RunFolderError(f"{folder} holds other files and no batch run: give a new or empty folder")
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:  # a file, a FIFO or a device of that name; a folder that cannot be made
            raise RunFolderError(f"{folder}: not a folder a run can be kept in ({exc.strerror or exc})") from None
        self.folder = folder
        self._lock_file = exclusive_lock(folder / LOCK_FILE)
        try:
            self.settings = self._settle(settings)
            self._prompts, self._settings_hash = self.settings.prompt_hashes(), self.settings.settings_hash()
            self.log = read_run(folder)
            self._answers = DurableLines(folder / ANSWERS_FILE)
        except BaseException:
            self._lock_file.close()
            raise

    def _settle(self, wanted: RunSettings) -> RunSettings:
        recorded = _read_settings(self.folder)
        if recorded is None:
            self._check_answers(wanted)
            write_atomically(self.folder / RUN_FILE, _settings_text(wanted))
            return wanted
        differences = recorded.differences(wanted)
        if differences:
            raise RunFolderError(
                f"{self.folder} holds another run ({'; '.join(differences)}): "
                "give the same prompts and settings to continue it, or another --out folder"
            )
        self._check_answers(recorded)
        added = tuple(model for model in wanted.models if model not in recorded.models)
        settled = replace(recorded, items=wanted.items, models=recorded.models + added)
        if settled != recorded:  # more models, or more items: the run grows, its answers stay
            write_atomically(self.folder / RUN_FILE, _settings_text(settled))
        return settled

    def _check_answers(self, settings: RunSettings) -> None:
        """Refuse a folder whose stored answers were given to other prompts or settings than ``settings``'
        (its run.json was deleted, or answers.jsonl copied in): a rerun would take them for this run's. With no
        run.json, an answer without digests (before schema 2) cannot be matched at all, and is refused too."""
        prompts, settings_hash = settings.prompt_hashes(), settings.settings_hash()
        vouched = (self.folder / RUN_FILE).exists()
        for record in _read_records(self.folder)[0]:
            if not isinstance(record, AnswerRecord):
                continue
            unmatched = record.prompt_hash is None and not vouched
            if unmatched or not record.answers(prompts, settings_hash):
                why = (
                    "an answer that does not say what it answers, and no run.json"
                    if unmatched
                    else f"its answer to item {record.item!r} was given to another prompt or other settings"
                )
                raise RunFolderError(
                    f"{self.folder} holds answers of another run ({why}): give another --out folder, or move "
                    f"its {ANSWERS_FILE} aside to start again"
                )

    def write(self, record: BatchRecord) -> None:
        """Append one record; it is on disk when this returns. An answer is stamped with the digests of the
        prompt and settings it answers."""
        if isinstance(record, AnswerRecord):
            record = replace(record, prompt_hash=self._prompts[record.item], settings_hash=self._settings_hash)
        self._answers.append(record.to_json())

    def close(self) -> None:
        self._answers.close()
        self._lock_file.close()  # closing the file releases its lock

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()


def _entries(folder: Path) -> list[Path]:
    return list(folder.iterdir()) if folder.is_dir() else []


class DurableLines:
    """A JSON-lines file appended to durably: each object flushed and fsynced before ``append`` returns, a
    line torn by a kill cut off when it is opened. ``append`` may be called from several threads; one
    process at a time should hold it (``exclusive_lock``)."""

    def __init__(self, path: Path) -> None:
        self._file = open_for_append(path)
        self._write_lock = threading.Lock()

    def append(self, data: dict[str, Any]) -> None:
        with self._write_lock:
            self._file.write(json_line(data).encode("utf-8"))
            self._file.flush()
            os.fsync(self._file.fileno())

    def close(self) -> None:
        self._file.close()


def exclusive_lock(path: Path, command: str = "zhbench batch") -> IO[bytes]:
    """An open file holding an exclusive lock on the run folder; ``RunFolderError`` when another ``command``
    has it."""
    lock_file = path.open("ab")
    try:
        import fcntl
    except ImportError:  # Windows: no flock; one run per folder is then the user's to keep
        return lock_file
    try:
        fcntl.flock(lock_file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock_file.close()
        raise RunFolderError(f"{path.parent}: another {command} is writing to it") from None
    return lock_file


def open_for_append(path: Path) -> IO[bytes]:
    """A JSON-lines file open for appending, a line torn by a kill first cut off (it is made again)."""
    answers = path.open("ab+")
    answers.seek(0)
    data = answers.read()
    if data and not data.endswith(b"\n"):
        answers.truncate(data.rfind(b"\n") + 1)
        answers.flush()
        os.fsync(answers.fileno())
    return answers
