"""The models zhbench can offer: the seed catalog, the models found locally, and the two demo stand-ins.

One list, read by ``zhbench models`` and by the app's model list.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from engines.hub.discovery import LocalModel, match_catalog

#: the demo pair offered when no model is on the machine: (row key, family), for pane A then B
DEMO_MODELS: tuple[tuple[str, str], ...] = (("demo:gpt2-dialogbot", "gpt2-dialogbot"), ("demo:chatyuan", "chatyuan"))
DEMO_PREFIX = "demo:"

Source = Literal["catalog", "local", "demo"]


@dataclass(frozen=True)
class ModelRow:
    """One model on offer."""

    key: str  # what loading takes: a path, a hub id, or a demo id
    id: str  # catalog: the Hugging Face id; local: the hub id, or the folder for a model outside the caches
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
        return data | {
            "path": str(self.path) if self.path else None,
            "size_bytes": self.size_bytes,
            "source": self.source,
        }


def estimated_load_bytes(parameters: int | None, *, gpu: bool) -> int | None:
    """Memory to load a model: fp16 weights on a GPU, fp32 on the CPU (activations come on top)."""
    if parameters is None:
        return None
    return parameters * (2 if gpu else 4)


def model_rows(local: Iterable[LocalModel], *, gpu: bool) -> list[ModelRow]:
    """Catalog rows first (with their local copy when there is one), then other local models, then the demos."""
    seeds, others = match_catalog(local)
    rows: list[ModelRow] = [
        ModelRow(
            key=str(match.path) if match else entry.id,
            id=entry.id,
            name=entry.name,
            family=entry.family,
            source="catalog",
            available=match is not None,
            path=match.path if match else None,
            size_bytes=match.size_bytes if match else None,
            estimated_bytes=estimated_load_bytes(entry.parameters, gpu=gpu),
            hf_id=entry.hf_id,
            modelscope_id=entry.modelscope_id,
            parameters=entry.parameters,
            licence=entry.licence,
        )
        for entry, match in seeds
    ]
    for model in others:
        rows.append(
            ModelRow(
                key=str(model.path),
                id=model.id,
                name=model.id if not Path(model.id).is_absolute() else model.path.name,
                family=model.family,
                source="local",
                available=True,
                path=model.path,
                size_bytes=model.size_bytes,
                estimated_bytes=model.size_bytes,
            )
        )
    for key, family in DEMO_MODELS:
        rows.append(ModelRow(key, key, f"tiny {family}", family, "demo", available=True))
    return rows


def demo_model_path(key: str, folder: Path) -> Path:
    """The demo stand-in for row ``key``, written into ``folder`` the first time (random weights)."""
    from engines.registry import standin_label, write_standin

    family = key.removeprefix(DEMO_PREFIX)
    target = folder / family
    if standin_label(target) == family:
        return target
    folder.mkdir(parents=True, exist_ok=True)
    # Written beside the target and renamed into place, so a demo cut off half-written is never used.
    scratch = Path(tempfile.mkdtemp(prefix=f".{family}-", dir=folder))
    try:
        written = write_standin(family, scratch / family)
        shutil.rmtree(target, ignore_errors=True)
        written.rename(target)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return target
