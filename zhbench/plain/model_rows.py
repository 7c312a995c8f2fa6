"""A model on offer, as plain data: one row of ``zhbench models`` and of the app's model list.

Built by ``workbench.session.offer``; imports nothing else of zhbench, so the screen's widgets can show it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

#: the demo pair offered when no model is on the machine: (row key, family), for pane A then B
DEMO_MODELS: tuple[tuple[str, str], ...] = (("demo:gpt2-dialogbot", "gpt2-dialogbot"), ("demo:chatyuan", "chatyuan"))
DEMO_PREFIX = "demo:"
#: beside a memory estimate: will it fit where models load
FIT_MARKS = {"fits": "✓", "tight": "~", "does not fit": "✗"}

#: "hub": a model on a hub that is neither in the catalog nor here, offered for download by its id
Source = Literal["catalog", "local", "demo", "server", "hub"]
#: a hub id as typed in the model filter: ``OWNER/NAME``, from Hugging Face, or with the hub first as
#: ``zhbench pull --from`` names it (``hf:OWNER/NAME``, ``modelscope:OWNER/NAME``); a GGUF repository's with
#: the quantization to take after a colon (``OWNER/NAME-GGUF:q4_k_m``)
_TYPED_HUB_ID = re.compile(
    r"(?:(hf|modelscope):)?([A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*)(?::([A-Za-z0-9][A-Za-z0-9_]*))?", re.ASCII
)


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
    #: how its weights are stored, where its family publishes several (a GGUF file's ``Q4_K_M``)
    quantization: str | None = None
    #: why a model found here cannot be used (an Ollama manifest whose blob is missing, a truncated file)
    problem: str | None = None

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
        elif self.source == "local":
            data |= {"parameters": self.parameters, "quantization": self.quantization, "problem": self.problem}
        data |= {"path": str(self.path) if self.path else None, "size_bytes": self.size_bytes, "source": self.source}
        if self.path is not None:  # a model here: its memory estimate and whether it fits
            data |= {"estimated_bytes": self.estimated_bytes, "fit": self.fit}
        return data | ({"base_url": self.base_url} if self.source == "server" else {})


def download_offer(text: str) -> ModelRow | None:
    """The row offering to download the hub id ``text`` (``OWNER/NAME``, ``hf:OWNER/NAME`` or
    ``modelscope:OWNER/NAME``, each with ``:QUANT`` for one quantization of a GGUF repository), or None when
    ``text`` is no hub id. Its family is known once it is here."""
    typed = _TYPED_HUB_ID.fullmatch(text.strip())
    if typed is None:
        return None
    hub, repo_id = typed.group(1) or "hf", typed.group(2)
    return ModelRow(
        key=repo_id,
        id=repo_id,
        name=repo_id,
        family="?",
        source="hub",
        available=False,
        hf_id=repo_id if hub == "hf" else None,
        modelscope_id=repo_id if hub == "modelscope" else None,
        quantization=typed.group(3).upper() if typed.group(3) else None,
    )
