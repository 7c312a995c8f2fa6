"""Finding models already on this machine: the Hugging Face and ModelScope caches and extra folders."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from zhbench.engines.errors import ZhbenchError
from zhbench.engines.hub.caches import huggingface_cached, modelscope_cached
from zhbench.engines.hub.catalog import CATALOG, CatalogEntry
from zhbench.engines.registry import detect_family


@dataclass(frozen=True)
class LocalModel:
    id: str  # hub id for cached models, the folder path otherwise
    family: str
    path: Path
    size_bytes: int


def folder_size(path: Path) -> int:
    """Bytes on disk of a model folder (symlinked cache blobs counted once each)."""
    if path.is_file():
        return path.stat().st_size
    seen: set[Path] = set()
    total = 0
    for item in path.rglob("*"):
        try:
            target = item.resolve(strict=True)
            if target.is_file() and target not in seen:
                seen.add(target)
                total += target.stat().st_size
        except (OSError, RuntimeError):  # a dangling link, or a symlink loop (RuntimeError before Python 3.13)
            continue
    return total


def _expanded(model_id: str, path: Path) -> Iterator[tuple[str, Path]]:
    """A folder holding several ``.pth`` checkpoints (an RWKV repository) is one model per file."""
    checkpoints = sorted(path.glob("*.pth")) if path.is_dir() else []
    if len(checkpoints) > 1 and not (path / "config.json").is_file():
        for checkpoint in checkpoints:
            yield f"{model_id}/{checkpoint.name}", checkpoint
    else:
        yield model_id, path


def _candidate(model_id: str, path: Path) -> LocalModel | None:
    try:
        family = detect_family(path, model_id)
    except ZhbenchError:
        return None
    return LocalModel(model_id, family, path, folder_size(path))


def folder_models(folders: Iterable[Path]) -> Iterator[tuple[str, Path]]:
    for folder in folders:
        if folder.is_dir():
            for child in sorted(p for p in folder.iterdir() if p.is_dir() or p.suffix == ".pth"):
                yield str(child), child


def local_models(extra_folders: Iterable[Path] = ()) -> list[LocalModel]:
    """Every model found locally whose family zhbench can tell."""
    found: dict[Path, LocalModel] = {}
    for source in (huggingface_cached(), modelscope_cached(), folder_models(extra_folders)):
        for model_id, path in (pair for listed in source for pair in _expanded(*listed)):
            if path not in found and (model := _candidate(model_id, path)) is not None:
                found[path] = model
    return list(found.values())


def match_catalog(local: Iterable[LocalModel]) -> tuple[list[tuple[CatalogEntry, LocalModel | None]], list[LocalModel]]:
    """Each catalog model with its local copy (by hub or ModelScope id) if found, and the local models left over."""
    by_id = {m.id.lower(): m for m in local}
    seeds = [
        (entry, by_id.pop(entry.id.lower(), None) or by_id.pop((entry.modelscope_id or "").lower(), None))
        for entry in CATALOG
    ]
    return seeds, list(by_id.values())
