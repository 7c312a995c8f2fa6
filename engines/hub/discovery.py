"""Finding models already on this machine: the hubs' caches (``sources.HUBS``), the folders of the config, and
the other apps' stores (``sources.LOCAL_STORES``: LM Studio's folders, Ollama's store), each a module of its own
listing its models; a folder holding several models (an RWKV repository's checkpoints, a GGUF repository's
quantizations) is one model per file."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from zhbench.engines.api import ModelFacts
from zhbench.engines.errors import ModelLoadError, ZhbenchError
from zhbench.engines.families.gguf.files import chat_model_files, split_parts
from zhbench.engines.hub.catalog import CATALOG, CatalogEntry
from zhbench.engines.hub.sources import HUBS, LOCAL_STORES, StoredModel, stored
from zhbench.engines.registry import detect_family, family_spec

#: a family not told, for a model listed only to say why it cannot be used
UNKNOWN_FAMILY = "?"


@dataclass(frozen=True)
class LocalModel:
    id: str  # hub id for cached models (and its file, for a repository of several), the Ollama or LM Studio
    # name, the folder or file path otherwise
    family: str
    path: Path
    size_bytes: int
    #: what its files say of it (parameters, quantization), as its family reads them
    facts: ModelFacts = field(default_factory=ModelFacts)
    #: why it cannot be used, for a model that is listed all the same (a missing blob, a truncated file)
    problem: str | None = None


def folder_size(path: Path) -> int:
    """Bytes on disk of a model folder (symlinked cache blobs counted once each), or of a model file (every
    part of a split GGUF model)."""
    if path.is_file():
        return sum(part.stat().st_size for part in split_parts(path))
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
    """A folder holding several ``.pth`` checkpoints (an RWKV repository) is one model per file, and so is one
    holding GGUF files (a repository of quantizations: each file, or each split model, is one)."""
    if not path.is_dir():
        yield model_id, path
        return
    checkpoints = sorted(path.glob("*.pth"))
    has_config = (path / "config.json").is_file()
    if len(checkpoints) > 1 and not has_config:
        for checkpoint in checkpoints:
            yield f"{model_id}/{checkpoint.name}", checkpoint
        return
    ggufs = chat_model_files(path.iterdir())
    for file in ggufs:
        yield f"{model_id}/{file.name}", file
    if has_config or not ggufs:
        yield model_id, path


def _candidate(model_id: str, path: Path) -> LocalModel | None:
    """The model at ``path`` as the list shows it; None where it is no model. A model whose files its family
    cannot read (a broken ``config.json``) is listed with the reason, not left out without a word."""
    try:
        family = detect_family(path, model_id)
    except ModelLoadError as exc:
        return LocalModel(model_id, UNKNOWN_FAMILY, path, folder_size(path), problem=exc.reason_within(path))
    except ZhbenchError:
        return None
    facts, problem = ModelFacts(), None
    read_facts = family_spec(family).facts
    if read_facts is not None:
        try:
            facts = read_facts(path)
        except ZhbenchError as exc:  # a truncated or corrupt file: listed, with the reason
            problem = exc.reason if isinstance(exc, ModelLoadError) else str(exc)
    return LocalModel(model_id, family, path, folder_size(path), facts, problem)


def folder_models(folders: Iterable[Path]) -> Iterator[tuple[str, Path]]:
    """Each model folder, ``.pth`` file and GGUF model file directly in ``folders``."""
    for folder in folders:
        if folder.is_dir():
            children = sorted(folder.iterdir())
            files = [p for p in children if p.is_file()]
            models = {p for p in children if p.is_dir() or p.suffix == ".pth"} | set(chat_model_files(files))
            for child in sorted(models):
                yield str(child), child


def local_models(extra_folders: Iterable[Path] = ()) -> list[LocalModel]:
    """Every model found locally whose family zhbench can tell, and every one a store lists that cannot be
    used, with its reason."""
    found: dict[Path, LocalModel] = {}
    for model in _stored(extra_folders):
        if model.problem is not None:
            unusable = LocalModel(model.id, UNKNOWN_FAMILY, model.path, 0, problem=model.problem)
            found.setdefault(model.row or model.path, unusable)
            continue
        for model_id, path in _expanded(model.id, model.path):
            # keyed by its row where it has one: Ollama's tags often share one blob (latest and 0.5b), each a row
            key = model.row or path
            if key not in found and (candidate := _candidate(model_id, path)) is not None:
                found[key] = candidate
    return list(found.values())


def _stored(extra_folders: Iterable[Path]) -> Iterator[StoredModel]:
    """What every source holds, in order: each hub's cache, the folders of the config, the other apps' stores."""
    for hub in HUBS.values():
        yield from stored(hub.cached())
    yield from stored(folder_models(extra_folders))
    for store in LOCAL_STORES:
        yield from store()


def match_catalog(local: Iterable[LocalModel]) -> tuple[list[tuple[CatalogEntry, LocalModel | None]], list[LocalModel]]:
    """Each catalog model with its local copy (by hub or ModelScope id) if found, and the local models left over."""
    by_id = {m.id.lower(): m for m in local}
    seeds = [
        (entry, by_id.pop(entry.id.lower(), None) or by_id.pop((entry.modelscope_id or "").lower(), None))
        for entry in CATALOG
    ]
    return seeds, list(by_id.values())
