"""Prompt sets: the items a batch sends to every model, read from JSONL, CSV or plain text, or built in.

- JSONL: one object a line, ``{"id", "prompt" | "messages", "category"?, "reference"?}``; ``messages`` is a
  multi-turn history ending with the user's message.
- CSV: a header row with a ``prompt`` column; ``id``, ``category`` and ``reference`` columns are read too.
- anything else: plain text, one prompt a line.

A line that cannot be an item is kept as a ``BadLine`` with its number and reason, so the caller can report
every one of them at once and decide whether to go on without them.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from importlib import resources
from pathlib import Path
from typing import Any

from zhbench.engines.errors import ZhbenchError
from zhbench.engines.local.file_reads import read_regular_text
from zhbench.engines.types import Message, validate_history

#: the sets that ship with zhbench, by the name ``--builtin`` takes
BUILTIN_SETS = ("zh-basic",)


class PromptSetError(ZhbenchError):
    """A prompt set that cannot be read at all (missing, unreadable, no items, unknown built-in name)."""


@dataclass(frozen=True)
class PromptItem:
    """One item of a set: the conversation to answer (its last message the user's), and how to label it."""

    id: str
    messages: tuple[Message, ...]
    category: str | None = None
    #: what a good answer says, for the person (or judge) reading the report
    reference: str | None = None

    @property
    def prompt(self) -> str:
        """The message being answered: the last user message."""
        return self.messages[-1]["content"]

    def to_json(self) -> dict[str, Any]:
        """The JSONL shape it was read from: ``prompt`` for one message, ``messages`` for a conversation."""
        data: dict[str, Any] = {"id": self.id}
        if len(self.messages) == 1:
            data["prompt"] = self.prompt
        else:
            data["messages"] = [dict(message) for message in self.messages]
        if self.category is not None:
            data["category"] = self.category
        if self.reference is not None:
            data["reference"] = self.reference
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any], fallback_id: str) -> PromptItem:
        """An item from a JSON object; ``ValueError`` (one line, no line number) when it cannot be one."""
        raw_id = data.get("id", fallback_id)
        if isinstance(raw_id, bool) or not isinstance(raw_id, (str, int)) or str(raw_id).strip() == "":
            raise ValueError('"id" must be a non-empty string or an integer')
        prompt, messages = data.get("prompt"), data.get("messages")
        if prompt is None and messages is None:
            raise ValueError('no "prompt" (or "messages")')
        if prompt is not None and messages is not None:
            raise ValueError('give "prompt" or "messages", not both')
        if prompt is not None:
            if not isinstance(prompt, str) or not prompt.strip():
                raise ValueError('"prompt" must be non-empty text')
            history: list[Message] = [{"role": "user", "content": prompt}]
        else:
            try:
                history = validate_history(messages)
            except ZhbenchError as exc:
                raise ValueError(f'"messages": {exc}') from None
        return cls(
            id=str(raw_id).strip(),
            messages=tuple(history),
            category=_optional_text(data, "category"),
            reference=_optional_text(data, "reference"),
        )


@dataclass(frozen=True)
class BadLine:
    """A line of a prompt file that is not an item."""

    line: int
    reason: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.reason}"


@dataclass(frozen=True)
class PromptSet:
    """The items of a prompt file (or a built-in set), and the lines that could not be read."""

    source: str
    items: tuple[PromptItem, ...]
    bad_lines: tuple[BadLine, ...] = ()

    @property
    def name(self) -> str:
        """A short name for folders and titles: the file's stem, or the built-in set's name."""
        return Path(self.source.removeprefix("builtin:")).stem or "prompts"

    def categories(self) -> dict[str, int]:
        """Each category and how many items it has, in the order they first appear (``-`` for none)."""
        counts: dict[str, int] = {}
        for item in self.items:
            counts[item.category or "-"] = counts.get(item.category or "-", 0) + 1
        return counts

    def subset(self, *, ids: Sequence[str] = (), categories: Sequence[str] = (), limit: int | None = None) -> PromptSet:
        """The items with one of ``ids`` (all when none given) and in one of ``categories`` (all when none
        given), in the set's order, the first ``limit`` of them; an id or category the set lacks is refused."""
        known_ids = {item.id for item in self.items}
        unknown = [item_id for item_id in ids if item_id not in known_ids]
        if unknown:
            raise PromptSetError(f"{self.source} has no item {unknown[0]!r}")
        known_categories = self.categories()
        missing = [category for category in categories if category not in known_categories]
        if missing:
            raise PromptSetError(
                f"{self.source} has no category {missing[0]!r} (it has: {', '.join(known_categories)})"
            )
        if limit is not None and limit < 1:
            raise PromptSetError(f"--limit takes 1 or more, got {limit}")
        items = [
            item
            for item in self.items
            if (not ids or item.id in ids) and (not categories or (item.category or "-") in categories)
        ]
        return replace(self, items=tuple(items[:limit]))

    def fingerprint(self) -> str:
        """A digest of every item's content: two sets with the same items have the same one."""
        canonical = json.dumps([item.to_json() for item in self.items], ensure_ascii=False, sort_keys=True)
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def read_prompt_set(path: Path) -> PromptSet:
    """The items of a JSONL (``.jsonl``), CSV (``.csv``) or plain text file (any other name)."""
    try:
        text = read_regular_text(path, encoding="utf-8-sig")  # a BOM, as spreadsheet programs write, is not a prompt
    except FileNotFoundError:
        raise PromptSetError(f"{path}: no such prompt file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise PromptSetError(f"{path}: unreadable prompt file ({exc})") from None
    suffix = path.suffix.lower()
    rows = _jsonl_rows(text) if suffix == ".jsonl" else _csv_rows(text) if suffix == ".csv" else _text_rows(text)
    return _collect(str(path), rows)


def builtin_set(name: str) -> PromptSet:
    """A set that ships with zhbench (``BUILTIN_SETS``)."""
    if name not in BUILTIN_SETS:
        raise PromptSetError(f"no built-in prompt set {name!r} (built in: {', '.join(BUILTIN_SETS)})")
    data = resources.files("zhbench.workbench.session.batch").joinpath("builtin", f"{name}.jsonl").read_text("utf-8")
    return _collect(f"builtin:{name}", _jsonl_rows(data))


#: a row of any format: its line number, and the item's fields or why the line is not one
_Row = tuple[int, Mapping[str, Any] | str]


def _collect(source: str, rows: Iterator[_Row]) -> PromptSet:
    items: list[PromptItem] = []
    bad: list[BadLine] = []
    seen: dict[str, int] = {}
    for line, row in rows:
        if isinstance(row, str):
            bad.append(BadLine(line, row))
            continue
        try:
            item = PromptItem.from_json(row, fallback_id=f"line-{line}")
        except ValueError as exc:
            bad.append(BadLine(line, str(exc)))
            continue
        if item.id in seen:  # answers are filed by id: a second item of one id would be taken for done
            bad.append(BadLine(line, f"id {item.id!r} is already used on line {seen[item.id]}"))
            continue
        seen[item.id] = line
        items.append(item)
    if not items and not bad:
        raise PromptSetError(f"{source}: no prompts in it")
    return PromptSet(source, tuple(items), tuple(bad))


def _jsonl_rows(text: str) -> Iterator[_Row]:
    for line, content in enumerate(text.split("\n"), 1):
        if not content.strip():
            continue
        try:
            data = json.loads(content)
        except (json.JSONDecodeError, RecursionError) as exc:
            yield line, f"not valid JSON ({exc})"
            continue
        yield line, data if isinstance(data, dict) else "not a JSON object"


#: the longest cell a CSV prompt file may hold (csv's own default limit): a row with a longer one is skipped
MAX_CSV_CELL = 131_072
_CSV_LIMIT = threading.Lock()


def _csv_rows(text: str) -> Iterator[_Row]:
    # csv stops at the first cell over its limit, and a row after it is lost: the file is read with the limit
    # raised to its length (it is in memory already), and a cell over MAX_CSV_CELL makes its row alone bad
    with _CSV_LIMIT:
        limit = csv.field_size_limit(max(len(text), MAX_CSV_CELL))
        try:
            rows = list(_csv_records(text))
        finally:
            csv.field_size_limit(limit)
    yield from rows


def _csv_records(text: str) -> Iterator[_Row]:
    reader = csv.DictReader(io.StringIO(text, newline=""))
    if reader.fieldnames is None or "prompt" not in reader.fieldnames:
        yield 1, 'a CSV prompt file needs a header row with a "prompt" column'
        return
    try:
        for row in reader:
            # a quoted cell may span lines: the row's number is where it ends, as the reader counts
            fields = {key: value for key, value in row.items() if key is not None and value not in (None, "")}
            longest = max((len(value) for value in fields.values() if isinstance(value, str)), default=0)
            if None in row:
                yield reader.line_num, "more cells than the header has columns"
            elif longest > MAX_CSV_CELL:
                yield reader.line_num, f"a cell of {longest:,} characters (at most {MAX_CSV_CELL:,})"
            else:
                yield reader.line_num, fields
    except csv.Error as exc:
        yield reader.line_num, f"not valid CSV ({exc})"


def _text_rows(text: str) -> Iterator[_Row]:
    for line, content in enumerate(text.split("\n"), 1):
        if content.strip():
            yield line, {"prompt": content.strip()}


def _optional_text(data: Mapping[str, Any], key: str) -> str | None:
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError(f'"{key}" must be text')
    return value
