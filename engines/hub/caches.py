"""The Hugging Face and ModelScope caches on this machine: where they are, and the models in them.

Both are read where their own clients put them, so zhbench finds what other tools fetched.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from zhbench.engines.errors import ZhbenchError

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
    found = _modelscope_copy(model_id)
    return found[0] if found is not None else None


def _modelscope_copy(model_id: str) -> tuple[Path, Path, Path] | None:
    """``model_id``'s snapshot in the ModelScope cache, its model folder, and the cache root that folder is
    in; None when it is not there, or ``model_id`` is no ``OWNER/NAME`` hub id."""
    try:
        check_model_id(model_id)
    except NotAModelIdError:
        return None
    if model_id.count("/") != 1:
        return None
    owner, name = model_id.split("/")
    current = modelscope_download_dir() / "models"
    snapshot = _newest_snapshot(current / f"{owner}--{name}")
    if snapshot is not None:
        return snapshot, snapshot.parent.parent, current
    root = modelscope_cache_root()
    candidates = [root / "models" / owner / name.replace(".", "___")]
    if owner not in _MODELSCOPE_SHARED_FOLDERS:  # ``root/models/OWNER`` holds every model of OWNER
        candidates.append(root / owner / name)
    for candidate in candidates:
        if candidate.is_dir() and any(candidate.iterdir()):
            return candidate, candidate, root
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


#: a hub id's owner or name, as huggingface_hub's ``validate_repo_id`` takes them
_ID_PART = re.compile(r"\w(?:[\w.-]*\w)?")
#: folders of the ModelScope cache that hold many models, never one: an "owner" of these names is refused
_MODELSCOPE_SHARED_FOLDERS = ("models", "datasets", "hub")


class NotAModelIdError(ZhbenchError):
    """What was given where a hub id belongs is not one (a path, ``..``, too long, odd characters)."""


class CacheRemovalError(ZhbenchError):
    """A cache folder that ``zhbench rm`` will not delete: it leads outside its cache."""


def check_model_id(model_id: str) -> None:
    """Refuse with ``NotAModelIdError`` anything but ``OWNER/NAME`` (or a bare ``NAME``, as Hugging Face
    allows): no ``..``, no absolute path, no ``--`` (the caches' own separator), at most 96 characters."""
    parts = model_id.split("/")
    problem = None
    if len(model_id) > 96:
        problem = f"{len(model_id)} characters long (a hub id has at most 96)"
    elif len(parts) > 2 or (len(parts) == 2 and "" in parts):
        problem = "a hub id is OWNER/NAME, not a path"
    elif not all(_ID_PART.fullmatch(part) for part in parts) or "--" in model_id or ".." in model_id:
        problem = "a hub id is OWNER/NAME of letters, digits, '-', '_' and '.', not starting or ending with '-' or '.'"
    if problem is not None:
        raise NotAModelIdError(f"not a hub id: {problem}")


@dataclass(frozen=True)
class CachedCopy:
    """A model's folder in one hub's cache, as ``zhbench rm`` removes it."""

    hub: str  # "hf" or "modelscope"
    folder: Path  # the repository's folder in the cache (for a link, the link itself)
    size_bytes: int
    #: the cache root the folder is one model's folder of
    root: Path

    @property
    def link_to(self) -> Path | None:
        """Where the folder leads, when it is a symbolic link (removing it removes only the link)."""
        return Path(os.readlink(self.folder)) if self.folder.is_symlink() else None


def cached_copies(model_id: str) -> list[CachedCopy]:
    """Every copy of ``model_id`` in the Hugging Face and ModelScope caches; ``NotAModelIdError`` for what is
    not a hub id, ``CacheRemovalError`` for a copy whose folder leads outside its cache."""
    check_model_id(model_id)
    found = []
    repo = _huggingface_repo(model_id)
    if repo is not None:
        root = huggingface_cache_dir()  # huggingface_hub gives the repository's path with links resolved: not that
        found.append(("hf", root / Path(repo.repo_path).name, root))
    modelscope = _modelscope_copy(model_id)
    if modelscope is not None:
        found.append(("modelscope", modelscope[1], modelscope[2]))
    copies = []
    for hub, folder, root in found:
        _check_inside(folder, root)
        size = 0 if folder.is_symlink() else _bytes_under(folder)
        copies.append(CachedCopy(hub, folder, size, root))
    return copies


def remove_cached(copy: CachedCopy) -> None:
    """Delete a copy's folder (every revision, blob and ref of it); a folder that is a symbolic link loses
    the link only, never what it leads to. Checked again just before, in case the folder changed since."""
    _check_inside(copy.folder, copy.root)
    if copy.folder.is_symlink():
        copy.folder.unlink()
    else:
        shutil.rmtree(copy.folder)  # it never follows a link inside the folder: it removes the link


def _check_inside(folder: Path, root: Path) -> None:
    """Refuse ``folder`` unless it is a folder (or a link) directly in place under ``root``: no part of the
    way from ``root`` to it may be a link leading elsewhere."""
    real_root = Path(os.path.realpath(root))
    relative = folder.relative_to(root)
    if not relative.parts or any(part in ("", ".", "..") for part in relative.parts):
        raise CacheRemovalError(f"{folder} is not one model's folder in {root}; nothing removed")
    if Path(os.path.realpath(folder.parent)) != real_root.joinpath(*relative.parts[:-1]):
        raise CacheRemovalError(f"{folder} leads outside the cache {root} (through a link); nothing removed")


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
