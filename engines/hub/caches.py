"""A model's copies in the hubs' caches on this machine, as ``zhbench rm`` finds and removes them (each hub
of ``sources.HUBS`` says where its copy is)."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from zhbench.engines.errors import ZhbenchError
from zhbench.engines.hub.hubs import Hub, check_model_id
from zhbench.engines.hub.sources import HUBS


class CacheRemovalError(ZhbenchError):
    """A cache folder that ``zhbench rm`` will not delete: it leads outside its cache."""


@dataclass(frozen=True)
class CachedCopy:
    """A model's folder in one hub's cache, as ``zhbench rm`` removes it."""

    hub: Hub
    folder: Path  # the repository's folder in the cache (for a link, the link itself)
    size_bytes: int
    #: the cache root the folder is one model's folder of
    root: Path

    @property
    def link_to(self) -> Path | None:
        """Where the folder leads, when it is a symbolic link (removing it removes only the link)."""
        return Path(os.readlink(self.folder)) if self.folder.is_symlink() else None


def cached_copies(model_id: str) -> list[CachedCopy]:
    """Every copy of ``model_id`` in the hubs' caches; ``NotAModelIdError`` for what is not a hub id,
    ``CacheRemovalError`` for a copy whose folder leads outside its cache."""
    check_model_id(model_id)
    copies = []
    for name, hub in HUBS.items():
        found = hub.cached_copy(model_id)
        if found is None:
            continue
        folder, root = found
        _check_inside(folder, root)
        size = 0 if folder.is_symlink() else _bytes_under(folder)
        copies.append(CachedCopy(name, folder, size, root))
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


def _bytes_under(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file() and not p.is_symlink())
