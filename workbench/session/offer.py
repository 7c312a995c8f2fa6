"""The models on offer: the catalog (with the local copy of each catalog model, where there is one), the
models found locally, the models of the config's servers, and the two demo stand-ins, written the first
time they are wanted."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path

from zhbench.engines.hub.discovery import LocalModel, match_catalog
from zhbench.engines.remote.openai_compat import FAMILY as SERVER_FAMILY
from zhbench.plain.model_rows import DEMO_MODELS, DEMO_PREFIX, ModelRow
from zhbench.workbench.session.memory import NvmlReader
from zhbench.workbench.session.model_specs import ServerListing


def estimated_load_bytes(parameters: int | None, *, gpu: bool) -> int | None:
    """Memory to load a model: fp16 weights on a GPU, fp32 on the CPU (activations come on top)."""
    if parameters is None:
        return None
    return parameters * (2 if gpu else 4)


def rows_on_offer(local: Iterable[LocalModel], *, gpu: bool) -> list[ModelRow]:
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
                key=str(model.path) if model.problem is None else model.id,  # loading it says why not
                id=model.id,
                name=model.id if not Path(model.id).is_absolute() else model.path.name,
                family=model.family,
                source="local",
                available=True,
                path=model.path,
                size_bytes=model.size_bytes,
                estimated_bytes=model.size_bytes if model.problem is None else None,
                parameters=model.facts.parameters,
                quantization=model.facts.quantization,
                problem=model.problem,
            )
        )
    for key, family in DEMO_MODELS:
        rows.append(ModelRow(key, key, f"tiny {family}", family, "demo", available=True))
    return rows


def with_fit(row: ModelRow, device: str | None, nvml: NvmlReader | None = None) -> ModelRow:
    """A local row with its memory estimate and fit on ``device`` (the GPUs read through ``nvml``, one reader
    for every row); other rows as they are. A model whose files the estimate cannot read keeps its row, with
    the reason: one bad model folder never costs the list its other rows."""
    from zhbench.engines.errors import ModelLoadError, ZhbenchError
    from zhbench.workbench.session.fit_check import check_fit

    if row.path is None or row.source == "demo" or row.problem is not None:
        return row
    try:
        verdict = check_fit(str(row.path), family=row.family, device=device, nvml=nvml)
    except ZhbenchError as exc:
        return replace(row, problem=exc.reason_within(row.path) if isinstance(exc, ModelLoadError) else str(exc))
    except Exception as exc:  # whatever a family's estimate trips on in a hostile folder
        return replace(row, problem=f"cannot be estimated ({type(exc).__name__}: {exc})")
    fit = verdict.verdict if verdict.verdict != "unknown" else None
    return replace(row, estimated_bytes=verdict.need.total_bytes, fit=fit)


def server_rows(listings: Iterable[ServerListing]) -> list[ModelRow]:
    """A row per model of each server that answered, loaded as ``SERVER/MODEL``."""
    return [
        ModelRow(
            key=f"{listing.name}/{model}",
            id=f"{listing.name}/{model}",
            name=model,
            family=SERVER_FAMILY,
            source="server",
            available=True,
            base_url=listing.server.public_url,
        )
        for listing in listings
        for model in listing.models
    ]


def server_problems(listings: Iterable[ServerListing]) -> list[str]:
    """One line per server that could not say what it serves."""
    return [f"server {listing.name} cannot be reached: {listing.problem}" for listing in listings if listing.problem]


def demo_model_path(key: str, folder: Path) -> Path:
    """The demo stand-in for row ``key``, written into ``folder`` the first time (random weights)."""
    from zhbench.engines.registry import standin_label, write_standin

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
