"""The Hugging Face and ModelScope caches on this machine: where they are, and the models in them.

Both are read where their own clients put them, so zhbench finds what other tools fetched.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from huggingface_hub import CachedRepoInfo


def huggingface_cache_dir() -> Path:
    """The Hugging Face hub cache, read from the environment at each call (``HF_HUB_CACHE``, ``HF_HOME``)."""
    if "HF_HUB_CACHE" in os.environ:
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    home = Path(os.environ.get("HF_HOME", Path.home() / ".cache" / "huggingface")).expanduser()
    return home / "hub"


def modelscope_cache_root() -> Path:
    """Where ModelScope clients up to 1.37 put models (``MODELSCOPE_CACHE``, else ``~/.cache/modelscope/hub``)."""
    return Path(os.environ.get("MODELSCOPE_CACHE", Path.home() / ".cache" / "modelscope" / "hub")).expanduser()


def modelscope_download_dir() -> Path:
    """Where the current ModelScope client (modelscope-hub) caches downloads: ``MODELSCOPE_CACHE``, else
    ``~/.cache/modelscope``, as ``models/OWNER--NAME/snapshots/REVISION``."""
    return Path(os.environ.get("MODELSCOPE_CACHE") or Path.home() / ".cache" / "modelscope").expanduser()


def _newest_snapshot(repo_folder: Path) -> Path | None:
    snapshots = [p for p in (repo_folder / "snapshots").glob("*") if p.is_dir() and any(p.iterdir())]
    return max(snapshots, key=lambda p: p.stat().st_mtime) if snapshots else None


def huggingface_snapshot(repo_id: str) -> Path | None:
    """The cached snapshot of ``repo_id``, or None."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HFValidationError, IncompleteSnapshotError, LocalEntryNotFoundError

    try:
        return Path(snapshot_download(repo_id, local_files_only=True, cache_dir=huggingface_cache_dir()))
    except IncompleteSnapshotError as exc:
        # Only part of the repository was fetched (`zhbench pull` takes only what a family needs, `hf download
        # --include` a pattern): the snapshot is still the model; whether its files suffice is the family's call.
        return Path(exc.snapshot_path)
    except (LocalEntryNotFoundError, HFValidationError, OSError):
        return None


def modelscope_snapshot(model_id: str) -> Path | None:
    """The ModelScope cache folder of ``model_id`` (``MODELSCOPE_CACHE`` or ``~/.cache/modelscope/hub``), or None.

    The current client stores a model as ``models/OWNER--NAME/snapshots/REVISION``; clients up to 1.37 under
    ``models/OWNER/NAME`` (dots in the name written ``___``), older ones directly under ``OWNER/NAME``.
    """
    owner, name = model_id.split("/")
    current = _newest_snapshot(modelscope_download_dir() / "models" / f"{owner}--{name}")
    if current is not None:
        return current
    root = modelscope_cache_root()
    for candidate in (root / "models" / owner / name.replace(".", "___"), root / owner / name):
        if candidate.is_dir() and any(candidate.iterdir()):
            return candidate
    return None


def huggingface_cached() -> Iterator[tuple[str, Path]]:
    """``(repo id, newest snapshot folder)`` of every model in the Hugging Face cache."""
    from huggingface_hub import scan_cache_dir
    from huggingface_hub.errors import CacheNotFound

    try:
        cache = scan_cache_dir(huggingface_cache_dir())
    except (CacheNotFound, OSError):
        return
    for repo in cache.repos:
        if repo.repo_type == "model" and repo.revisions:
            newest = max(repo.revisions, key=lambda r: r.last_modified)
            yield repo.repo_id, Path(newest.snapshot_path)


def modelscope_cached() -> Iterator[tuple[str, Path]]:
    """``(model id, folder)`` of every model in the ModelScope cache."""
    current = modelscope_download_dir() / "models"
    if current.is_dir():
        for repo in sorted(p for p in current.iterdir() if "--" in p.name):
            snapshot = _newest_snapshot(repo)
            if snapshot is not None:
                yield repo.name.replace("--", "/", 1), snapshot
    root = modelscope_cache_root()
    for base in (root / "models", root):
        if not base.is_dir():
            continue
        owners = (p for p in base.iterdir() if p.is_dir() and not p.name.startswith((".", "_")) and "--" not in p.name)
        for owner in sorted(o for o in owners if base != root or o.name not in ("models", "datasets")):
            for model in sorted(p for p in owner.iterdir() if p.is_dir()):
                yield f"{owner.name}/{model.name.replace('___', '.')}", model


@dataclass(frozen=True)
class CachedCopy:
    """A model's files in one hub's cache, as ``zhbench rm`` removes them."""

    hub: str  # "hf" or "modelscope"
    folder: Path  # the repository's folder in the cache
    size_bytes: int


def cached_copies(model_id: str) -> list[CachedCopy]:
    """Every copy of ``model_id`` in the Hugging Face and ModelScope caches."""
    copies = []
    repo = _huggingface_repo(model_id)
    if repo is not None:
        copies.append(CachedCopy("hf", Path(repo.repo_path), repo.size_on_disk))
    snapshot = modelscope_snapshot(model_id) if model_id.count("/") == 1 else None
    if snapshot is not None:
        folder = snapshot.parent.parent if snapshot.parent.name == "snapshots" else snapshot
        copies.append(CachedCopy("modelscope", folder, _bytes_under(folder)))
    return copies


def remove_cached(copy: CachedCopy, model_id: str) -> None:
    """Delete a copy: through huggingface_hub's own cache API (every revision, its blobs and refs), or the
    ModelScope folder."""
    if copy.hub == "hf":
        repo = _huggingface_repo(model_id)
        if repo is not None:
            from huggingface_hub import scan_cache_dir

            hashes = [revision.commit_hash for revision in repo.revisions]
            scan_cache_dir(huggingface_cache_dir()).delete_revisions(*hashes).execute()
        return
    shutil.rmtree(copy.folder)


def _huggingface_repo(model_id: str) -> CachedRepoInfo | None:
    from huggingface_hub import scan_cache_dir
    from huggingface_hub.errors import CacheNotFound

    try:
        cache = scan_cache_dir(huggingface_cache_dir())
    except (CacheNotFound, OSError):
        return None
    return next((r for r in cache.repos if r.repo_type == "model" and r.repo_id == model_id), None)


def _bytes_under(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file() and not p.is_symlink())
