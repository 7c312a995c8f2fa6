"""What a session knows about each pane: the engine, its settings, the conversation, the reply underway.

Plain state, changed by ``Bench`` (and so, in the app, only by message handlers on the UI thread).
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from zhbench.engines.api import ChatEngine
from zhbench.engines.types import GenerationParams, Message
from zhbench.workbench.session.records import PaneModel

#: pane names in order: a session of N panes uses the first N
PANE_NAMES = "abcdefghijklmnopqrstuvwxyz"
#: how many panes the app's bench shows side by side (``--pane``, ``panes =`` in the config, add/remove pane)
APP_PANES = range(2, 5)


@dataclass(frozen=True)
class ShownEntry:
    """One message as the pane shows it, so the pane can be redrawn (after a swap)."""

    role: str
    text: str
    stats: str | None = None
    stopped: bool = False
    error: str | None = None
    reasoning: str = ""
    #: its id in the transcript; a reply: what of it goes back into the conversation (None: nothing, it failed)
    record_id: str = ""
    fed_back: str | None = None
    #: a finished reply's stats as ``ReplyStats.to_dict()`` (what ``stats`` says, for another way to say it)
    reply_stats: dict[str, Any] | None = None
    #: the model that wrote a reply (the pane's label then): a conversation carried on by another model
    #: keeps who wrote what
    model: str | None = None
    #: a user message: the turn it was sent in (the same in every pane it went to)
    turn: int | None = None


@dataclass
class Branch:
    """One branch of a fork: the pane's conversation from its own user message on. While it is the branch on
    show, the pane's lists hold it (these are refreshed when another branch is shown)."""

    #: the record id of the user message that begins it
    message: str
    shown: list[ShownEntry] = field(default_factory=list)
    history: list[Message] = field(default_factory=list)
    reply_versions: list[ShownEntry] = field(default_factory=list)
    chosen_version: int = 0


@dataclass
class Fork:
    """A user message that was edited: where its branches start in the pane's lists, and the one on show."""

    shown_at: int
    history_at: int
    branches: list[Branch]
    chosen: int = 0

    @property
    def message(self) -> str:
        """The id of the message on show at this fork."""
        return self.branches[self.chosen].message

    def place(self) -> tuple[int, int]:
        """``(number, count)`` of the branch on show."""
        return self.chosen + 1, len(self.branches)


@dataclass
class ReplyUnderway:
    """A reply being generated: its transcript id, its own cancel flag, and what has streamed so far."""

    record_id: str
    cancel: threading.Event
    params: GenerationParams
    started: str
    text: str = ""
    reasoning: str = ""
    last_checkpoint: float = 0.0
    regenerates: str | None = None


@dataclass
class PaneState:
    name: str
    engine: ChatEngine | None = None
    label: str | None = None  # the model's name on screen: its id (``identity.model_identity``) once loaded
    #: what the model's content is (``ModelIdentity.fingerprint``), kept beside its id in every record
    fingerprint: str | None = None
    demo: bool = False
    #: a stand-in's random weights (a demo, or a model ``zhbench make-tiny`` wrote)
    random_weights: bool = False
    weight_bytes: int | None = None
    params: GenerationParams | None = None
    history: list[Message] = field(default_factory=list)
    shown: list[ShownEntry] = field(default_factory=list)
    loading: str | None = None  # what is being loaded, while it is
    load_started: float = 0.0
    load_step: str = ""
    reply: ReplyUnderway | None = None
    #: the load underway carries the conversation on (else the new model starts a new one)
    load_keeps_conversation: bool = False
    #: bumped by every load and every reply, so a late message from an older worker is ignored
    generation: int = 0
    #: every version of the last reply, oldest first (regenerating adds one); ``shown[-1]`` is the chosen one
    reply_versions: list[ShownEntry] = field(default_factory=list)
    chosen_version: int = 0
    #: the user messages that editing made branches at (``branches.py``): every branch kept, one on show
    forks: list[Fork] = field(default_factory=list)

    @property
    def busy(self) -> bool:
        return self.reply is not None

    def reply_version(self) -> tuple[int, int] | None:
        """``(number, count)`` of the last reply's version on show, when regenerating made more than one."""
        if len(self.reply_versions) < 2:
            return None
        return self.chosen_version + 1, len(self.reply_versions)

    def add_reply(self, entry: ShownEntry, *, regenerates: bool) -> None:
        """Show a finished reply and carry it on: a regenerated one joins the versions of the last reply and is
        the one chosen; any other starts a new list of versions."""
        if entry.fed_back is not None:
            self.history.append({"role": "assistant", "content": entry.fed_back})
        self.shown.append(entry)
        if not regenerates:
            self.reply_versions.clear()
        self.reply_versions.append(entry)
        self.chosen_version = len(self.reply_versions) - 1

    def forget_conversation(self) -> None:
        """Start the conversation afresh (the transcript keeps every message of it)."""
        self.history.clear()
        self.shown.clear()
        self.reply_versions.clear()
        self.forks.clear()

    def model(self) -> PaneModel | None:
        """The model record of the transcript: name, family, path and settings."""
        if self.engine is None:
            return None
        info = self.engine.describe()
        return PaneModel(
            model=self.label,
            fingerprint=self.fingerprint,
            family=info.family,
            path=info.path,
            device=info.device,
            dtype=info.dtype,
            demo=self.demo,
            params=self.params.to_dict() if self.params else None,
            random_weights=self.random_weights,
            base_url=info.details.get("base_url"),
            server_model=info.details.get("server_model"),
            quantization=info.details.get("quantization"),
            sha256=info.details.get("sha256"),
        )

    def take_contents_of(self, other: PaneState) -> None:
        """Everything of ``other`` but its name (the panes swap what they hold, not where they are)."""
        for item in dataclasses.fields(self):
            if item.name != "name":
                setattr(self, item.name, getattr(other, item.name))


def params_summary(params: GenerationParams) -> str:
    """The header line of a pane's settings: the ones people tune, then any the family adds."""
    base = {f.name for f in dataclasses.fields(GenerationParams)}
    shown = {  # what the engine cannot apply (a server's API has no top_k, RWKV no penalty) is not shown, nor
        # what is left to a server's own defaults (None)
        name: f"{label} {value:g}"
        for name, label, value in (
            ("temperature", "temp", params.temperature),
            ("top_p", "top_p", params.top_p),
            ("top_k", "top_k", params.top_k),
        )
        if name not in params.fixed_settings and value is not None
    }
    mode = "greedy" if params.greedy else " · ".join(shown.values()) or "server defaults"
    if params.num_beams > 1:
        mode += f" · {params.num_beams} beams"
    penalty = [] if "repetition_penalty" in params.fixed_settings else [f"rep {params.repetition_penalty:g}"]
    parts = [
        mode,
        *penalty,
        *([f"max {params.max_new_tokens}"] if params.max_new_tokens is not None else []),
        f"seed {params.seed if params.seed is not None else 'random'}",
    ]
    extras = [_setting(f.name, getattr(params, f.name)) for f in dataclasses.fields(params) if f.name not in base]
    return " · ".join(parts + [extra for extra in extras if extra])


def _setting(name: str, value: object) -> str:
    """A family's own setting for the header: on/off for a switch, a short quote for text (none if empty)."""
    if isinstance(value, bool):
        return f"{name} {'on' if value else 'off'}"
    if isinstance(value, str):
        return f"{name} “{value[:24]}{'…' if len(value) > 24 else ''}”" if value else ""
    return f"{name} {value}"


def editable_values(params: GenerationParams) -> dict[str, str]:
    """Every setting as text for the editor, the ones people tune most first."""
    first = ["temperature", "top_p", "top_k", "repetition_penalty", "max_new_tokens", "seed"]
    names = first + [f.name for f in dataclasses.fields(params) if f.name not in first]
    names = [name for name in names if name not in params.fixed_settings]  # the engine cannot apply them
    return {name: "" if getattr(params, name) is None else str(getattr(params, name)) for name in names}


def switch_names(params: GenerationParams) -> frozenset[str]:
    """The on/off settings among ``editable_values``: the editor shows them as switches."""
    return _settings_holding(params, bool)


def preset_values(presets: Mapping[str, GenerationParams]) -> dict[str, dict[str, str]]:
    """Each preset's decoding settings as the editor's text. Picking a preset keeps what the person chose for
    the prompt (its prompt settings: a system prompt, a task) and a seed it leaves to be drawn; any other
    setting it leaves unset (a server's default) is emptied."""
    return {name: _preset_settings(preset) for name, preset in presets.items()}


def _preset_settings(preset: GenerationParams) -> dict[str, str]:
    return {
        name: value
        for name, value in editable_values(preset).items()
        if name not in preset.prompt_settings and not (name == "seed" and preset.seed is None)
    }


def value_problems(params: GenerationParams, values: dict[str, str]) -> dict[str, str]:
    """What is wrong with the editor's values on top of ``params``, one message for each bad setting, in the
    editor's order; empty when they apply."""
    unreadable: dict[str, str] = {}
    readable: dict[str, object] = {}
    for name, value in _overrides(params, values).items():
        try:
            params.with_overrides({name: value})
        except ValueError as exc:
            unreadable[name] = str(exc)
        else:
            readable[name] = value
    found = {**params.with_overrides(readable).problems(), **unreadable}
    return {name: found[name] for name in [*values, *found] if name in found}


def apply_values(params: GenerationParams, values: dict[str, str]) -> GenerationParams:
    """``params`` with the editor's values; ``ValueError`` if out of range."""
    edited = params.with_overrides(_overrides(params, values))
    edited.validate()
    return edited


def _overrides(params: GenerationParams, values: dict[str, str]) -> dict[str, object]:
    """The editor's values as overrides: an empty field means "none" for a setting that can be none (the seed:
    draw one), and the empty text for a text setting (no system prompt)."""
    texts = _settings_holding(params, str)
    return {name: (None if value == "" and name not in texts else value) for name, value in values.items()}


def _settings_holding(params: GenerationParams, kind: type) -> frozenset[str]:
    """The settings of ``params`` whose value is a ``kind``."""
    return frozenset(f.name for f in dataclasses.fields(params) if isinstance(getattr(params, f.name), kind))
