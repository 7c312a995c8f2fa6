"""What a session file holds, record by record: typed, versioned, and read back from any earlier version.

A session file is JSON lines. It starts with one ``SessionRecord``; then come ``MessageRecord`` (a user
message or a reply, per pane), ``ModelRecord`` (a pane got another model), ``ClearRecord`` (a pane's
conversation was cleared), ``ChoiceRecord`` (the conversation goes on from another version of a
regenerated reply) and ``BranchRecord`` (it goes on from another branch of an edited message: a user
message whose ``edits`` names the one it replaces starts a branch there). The session record's ``schema``
says which version of these records the file holds; files of an earlier version read the same way (what
they lack takes its default).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

#: 1: files written before the records were typed (no ``schema`` field); 2: the session record says ``schema``;
#: 3: ``choice`` records, a model record's ``kept_conversation``, ``regenerates`` on every regenerated reply;
#: 4: ``edits`` on a user message that replaces an earlier one (a branch), ``branch`` records
SCHEMA = 4

Role = Literal["user", "assistant"]


class RecordError(ValueError):
    """A JSON object that is not a zhbench record (wrong type or fields)."""


@dataclass(frozen=True)
class PaneModel:
    """The model a pane runs, as the transcript records it."""

    model: str | None  # the name shown on screen
    family: str
    path: str | None
    device: str | None
    dtype: str | None
    demo: bool = False
    params: dict[str, Any] | None = None
    #: a stand-in (``zhbench make-tiny``, the demos): its replies are noise
    random_weights: bool = False
    #: a model on a server: where the API is (no credentials), and the model id the server lists
    base_url: str | None = None
    server_model: str | None = None
    #: what the model's content is: ``sha256:HEX`` of its weights, or ``revision:HASH`` of a hub snapshot
    fingerprint: str | None = None
    #: what the engine reports of a single-file model (a GGUF file): its quantization type and the file's sha256
    quantization: str | None = None
    sha256: str | None = None

    def to_json(self) -> dict[str, Any]:
        data = {
            "model": self.model,
            "family": self.family,
            "path": self.path,
            "device": self.device,
            "dtype": self.dtype,
            "demo": self.demo,
            "params": self.params,
        }
        if self.fingerprint is not None:
            data["fingerprint"] = self.fingerprint
        data |= {key: value for key, value in self.file_facts().items() if value is not None}
        if self.base_url is not None:
            data |= {"base_url": self.base_url, "server_model": self.server_model}
        return data | {"random_weights": True} if self.random_weights else data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> PaneModel:
        return cls(
            model=_optional_str(data, "model"),
            family=str(data.get("family") or "?"),
            path=_optional_str(data, "path"),
            device=_optional_str(data, "device"),
            dtype=_optional_str(data, "dtype"),
            demo=bool(data.get("demo", False)),
            params=_optional_dict(data, "params"),
            random_weights=bool(data.get("random_weights", False)),
            base_url=_optional_str(data, "base_url"),
            server_model=_optional_str(data, "server_model"),
            fingerprint=_optional_str(data, "fingerprint"),
            quantization=_optional_str(data, "quantization"),
            sha256=_optional_str(data, "sha256"),
        )

    def file_facts(self) -> dict[str, str | None]:
        """The model file's quantization and sha256 (each None where the engine did not report it)."""
        return {"quantization": self.quantization, "sha256": self.sha256}

    def label(self) -> str:
        """``name (family, path)`` for exports; a server's base URL stands for a path."""
        return f"{self.model or '?'} ({self.family}, {self.path or self.base_url or '?'})"


@dataclass(frozen=True)
class SessionRecord:
    """The first record of a session file: its id, when it started, and what each pane ran then."""

    id: str
    started: str
    panes: dict[str, PaneModel | None]
    schema: int = SCHEMA
    #: a round of the blind arena (its panes say "Model A" and "Model B" until the vote)
    arena: bool = False
    type: Literal["session"] = "session"

    def to_json(self) -> dict[str, Any]:
        data = {
            "type": self.type,
            "schema": self.schema,
            "id": self.id,
            "started": self.started,
            "panes": {name: pane.to_json() if pane else None for name, pane in self.panes.items()},
        }
        return data | {"arena": True} if self.arena else data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> SessionRecord:
        panes = data.get("panes")
        if not isinstance(panes, Mapping):
            panes = {}
        return cls(
            id=str(data.get("id") or ""),
            started=str(data.get("started") or "?"),
            panes={str(k): PaneModel.from_json(v) if isinstance(v, Mapping) else None for k, v in panes.items()},
            schema=data["schema"] if isinstance(data.get("schema"), int) else 1,
            arena=data.get("arena") is True,
        )


@dataclass(frozen=True)
class MessageRecord:
    """A user message to one pane, or a pane's reply. A streaming reply is written more than once under
    one ``id`` (``partial`` checkpoints); the last record of an id is the one that counts."""

    id: str
    pane: str
    turn: int
    role: Role
    content: str
    model: str | None
    time: str
    #: user messages: every pane the message went to
    to: tuple[str, ...] = ()
    #: replies: the family, the settings used (the seed included), the stats once finished
    family: str | None = None
    params: dict[str, Any] | None = None
    stats: dict[str, Any] | None = None
    partial: bool = False
    started: str | None = None
    error: str | None = None
    #: replies made by regenerating: the id of the version of the reply that was shown when this one was asked
    #: for (the versions of one reply form a chain, or a tree when an earlier version was chosen again)
    regenerates: str | None = None
    #: replies of a reasoning model: its thinking (``content`` is the answer)
    reasoning: str | None = None
    #: replies from a server: the model id the server said answered
    served_model: str | None = None
    #: user messages written by editing an earlier one: the id of the message it replaces (which stays, with
    #: everything after it, on a branch of its own)
    edits: str | None = None
    type: Literal["message"] = "message"

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"type": self.type, "id": self.id, "pane": self.pane, "turn": self.turn}
        if self.role == "user":
            data |= {"to": list(self.to), "role": self.role, "content": self.content, "model": self.model,
                     "time": self.time}  # fmt: skip
            return data | {"edits": self.edits} if self.edits is not None else data
        data |= {
            "role": self.role,
            "content": self.content,
            "model": self.model,
            "family": self.family,
            "params": self.params,
            "stats": self.stats,
            "partial": self.partial,
            "started": self.started,
            "time": self.time,
        }
        if self.error is not None:
            data["error"] = self.error
        if self.regenerates is not None:
            data["regenerates"] = self.regenerates
        if self.reasoning:
            data["reasoning"] = self.reasoning
        if self.served_model is not None:
            data["served_model"] = self.served_model
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> MessageRecord:
        role = data.get("role")
        if role not in ("user", "assistant"):
            raise RecordError(f"a message with role {role!r}")
        to = data.get("to")
        turn = data.get("turn")
        return cls(
            id=str(data.get("id") or ""),
            pane=str(data.get("pane") or "?"),
            turn=turn if isinstance(turn, int) else 0,
            role=role,
            content=str(data.get("content") or ""),
            model=_optional_str(data, "model"),
            time=str(data.get("time") or ""),
            to=tuple(str(p) for p in to) if isinstance(to, list) else (),
            family=_optional_str(data, "family"),
            params=_optional_dict(data, "params"),
            stats=_optional_dict(data, "stats"),
            partial=bool(data.get("partial", False)),
            started=_optional_str(data, "started"),
            error=_optional_str(data, "error"),
            regenerates=_optional_str(data, "regenerates"),
            reasoning=_optional_str(data, "reasoning"),
            served_model=_optional_str(data, "served_model"),
            edits=_optional_str(data, "edits") if role == "user" else None,
        )


@dataclass(frozen=True)
class ModelRecord:
    """A pane got another model (or the panes were swapped); ``model`` is None for an empty pane. A newly
    loaded model starts a new conversation unless ``kept_conversation``: then it carries on the pane's."""

    pane: str
    time: str
    model: PaneModel | None
    swapped: bool = False
    kept_conversation: bool = False
    type: Literal["model"] = "model"

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"type": self.type, "pane": self.pane, "time": self.time}
        if self.swapped:
            data["swapped"] = True
        if self.kept_conversation:
            data["kept_conversation"] = True
        return data | (self.model.to_json() if self.model else {})

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ModelRecord:
        return cls(
            pane=str(data.get("pane") or "?"),
            time=str(data.get("time") or ""),
            model=PaneModel.from_json(data) if data.get("family") else None,
            swapped=bool(data.get("swapped", False)),
            kept_conversation=bool(data.get("kept_conversation", False)),
        )


@dataclass(frozen=True)
class ClearRecord:
    """A pane's conversation was cleared."""

    pane: str
    time: str
    type: Literal["clear"] = "clear"

    def to_json(self) -> dict[str, Any]:
        return {"type": self.type, "pane": self.pane, "time": self.time}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ClearRecord:
        return cls(pane=str(data.get("pane") or "?"), time=str(data.get("time") or ""))


@dataclass(frozen=True)
class ChoiceRecord:
    """The pane's conversation goes on from ``reply``, one of the versions of its last reply (the person
    browsed back or forth among the versions that regenerating made)."""

    pane: str
    time: str
    reply: str
    type: Literal["choice"] = "choice"

    def to_json(self) -> dict[str, Any]:
        return {"type": self.type, "pane": self.pane, "time": self.time, "reply": self.reply}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ChoiceRecord:
        pane, time, reply = (str(data.get(key) or "") for key in ("pane", "time", "reply"))
        return cls(pane=pane or "?", time=time, reply=reply)


@dataclass(frozen=True)
class BranchRecord:
    """The pane's conversation goes on from the branch that ``message`` begins: one of the versions of a user
    message that editing made (the person stepped back or forth among the branches at that message)."""

    pane: str
    time: str
    message: str
    type: Literal["branch"] = "branch"

    def to_json(self) -> dict[str, Any]:
        return {"type": self.type, "pane": self.pane, "time": self.time, "message": self.message}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> BranchRecord:
        pane, time, message = (str(data.get(key) or "") for key in ("pane", "time", "message"))
        return cls(pane=pane or "?", time=time, message=message)


Record = SessionRecord | MessageRecord | ModelRecord | ClearRecord | ChoiceRecord | BranchRecord
BodyRecord = MessageRecord | ModelRecord | ClearRecord | ChoiceRecord | BranchRecord

_BODY_TYPES: dict[str, type[BodyRecord]] = {
    "message": MessageRecord,
    "model": ModelRecord,
    "clear": ClearRecord,
    "choice": ChoiceRecord,
    "branch": BranchRecord,
}


def body_record_from_json(data: Mapping[str, Any]) -> BodyRecord:
    """A record after the session record; ``RecordError`` for an unknown type or a malformed message."""
    kind = data.get("type")
    record_type = _BODY_TYPES.get(kind) if isinstance(kind, str) else None
    if record_type is None:
        raise RecordError(f"unknown record type {kind!r}")
    return record_type.from_json(data)


def _optional_str(data: Mapping[str, Any], key: str) -> str | None:
    value = data.get(key)
    return None if value is None else str(value)


def _optional_dict(data: Mapping[str, Any], key: str) -> dict[str, Any] | None:
    value = data.get(key)
    return dict(value) if isinstance(value, Mapping) else None
