"""What a session knows about each pane: the engine, its settings, the conversation, the reply underway.

Plain state, changed by ``Bench`` (and so, in the app, only by message handlers on the UI thread).
"""

from __future__ import annotations

import dataclasses
import threading
from dataclasses import dataclass, field

from engines.api import ChatEngine
from engines.types import GenerationParams, Message
from workbench.session.records import PaneModel

#: pane names in order: a session of N panes uses the first N
PANE_NAMES = "abcdefghijklmnopqrstuvwxyz"


@dataclass
class ShownEntry:
    """One message as the pane shows it, so the pane can be redrawn (after a swap)."""

    role: str
    text: str
    stats: str | None = None
    stopped: bool = False
    error: str | None = None
    reasoning: str = ""


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
    label: str | None = None  # the model's name on screen
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
    #: bumped by every load and every reply, so a late message from an older worker is ignored
    generation: int = 0
    last_reply_id: str | None = None

    @property
    def busy(self) -> bool:
        return self.reply is not None

    def model(self) -> PaneModel | None:
        """The model record of the transcript: name, family, path and settings."""
        if self.engine is None:
            return None
        info = self.engine.describe()
        return PaneModel(
            model=self.label,
            family=info.family,
            path=info.path,
            device=info.device,
            dtype=info.dtype,
            demo=self.demo,
            params=self.params.to_dict() if self.params else None,
            random_weights=self.random_weights,
            base_url=info.details.get("base_url"),
            server_model=info.details.get("server_model"),
        )

    def take_contents_of(self, other: PaneState) -> None:
        """Everything of ``other`` but its name (the panes swap what they hold, not where they are)."""
        for item in dataclasses.fields(self):
            if item.name != "name":
                setattr(self, item.name, getattr(other, item.name))


def params_summary(params: GenerationParams) -> str:
    """The header line of a pane's settings: the ones people tune, then any the family adds."""
    base = {f.name for f in dataclasses.fields(GenerationParams)}
    mode = "greedy" if params.greedy else f"temp {params.temperature:g} · top_p {params.top_p:g} · top_k {params.top_k}"
    if params.num_beams > 1:
        mode += f" · {params.num_beams} beams"
    parts = [
        mode,
        f"rep {params.repetition_penalty:g}",
        f"max {params.max_new_tokens}",
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
    return frozenset(f.name for f in dataclasses.fields(params) if isinstance(getattr(params, f.name), bool))


def apply_values(params: GenerationParams, values: dict[str, str]) -> GenerationParams:
    """``params`` with the editor's values; an empty field means "none" for a setting that can be none (the
    seed: draw one), and the empty text for a text setting (no system prompt). ``ValueError`` if out of range."""
    text_settings = {f.name for f in dataclasses.fields(params) if isinstance(getattr(params, f.name), str)}
    overrides: dict[str, object] = {
        name: (None if value == "" and name not in text_settings else value) for name, value in values.items()
    }
    edited = params.with_overrides(overrides)
    edited.validate()
    return edited
