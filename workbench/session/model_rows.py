"""A model on offer, as plain data: one row of ``zhbench models`` and of the app's model list.

Built by ``workbench.session.offer``; imports nothing of the engines, so the screen's widgets can show it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

#: the demo pair offered when no model is on the machine: (row key, family), for pane A then B
DEMO_MODELS: tuple[tuple[str, str], ...] = (("demo:gpt2-dialogbot", "gpt2-dialogbot"), ("demo:chatyuan", "chatyuan"))
DEMO_PREFIX = "demo:"

Source = Literal["catalog", "local", "demo", "server"]


@dataclass(frozen=True)
class ModelRow:
    """One model on offer."""

    key: str  # what loading takes: a path, a hub id, a demo id, or SERVER/MODEL
    id: str  # catalog: the Hugging Face id; local: the hub id, or the folder for a model outside the caches;
    # server: SERVER/MODEL
    name: str
    family: str
    source: Source
    available: bool  # whether it is on this machine (or can be made, for the demos)
    path: Path | None = None
    size_bytes: int | None = None  # on disk; None when not downloaded
    estimated_bytes: int | None = None  # memory to load it, as estimated
    #: catalog rows: what the catalog knows of the model
    hf_id: str | None = None
    modelscope_id: str | None = None
    parameters: int | None = None
    licence: str | None = None
    #: server rows: where the server's API starts (without credentials)
    base_url: str | None = None
    #: a local model against the memory free where the app loads: "fits", "tight" or "does not fit"
    fit: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The shape ``zhbench models --json`` prints (catalog rows carry the catalog's fields)."""
        data: dict[str, Any] = {"id": self.id, "name": self.name, "family": self.family}
        if self.source == "catalog":
            data |= {
                "hf_id": self.hf_id,
                "modelscope_id": self.modelscope_id,
                "parameters": self.parameters,
                "licence": self.licence,
            }
        data |= {"path": str(self.path) if self.path else None, "size_bytes": self.size_bytes, "source": self.source}
        return data | ({"base_url": self.base_url} if self.source == "server" else {})
