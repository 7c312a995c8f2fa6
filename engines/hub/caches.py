"""The Hugging Face and ModelScope caches on this machine: where they are, and the models in them.

Both are read where their own clients put them, so zhbench finds what other tools fetched.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path


def huggingface_cache_dir() -> Path:
    """The Hugging Face hub cache, read from the environment at each call (``HF_HUB_CACHE``, ``HF_HOME``)."""
    if "HF_HUB_CACHE" in os.environ:
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    home = Path(os.environ.get("HF_HOME", Path.home() / ".cache" / "huggingface")).expanduser()
    return home / "hub"


def modelscope_cache_root() -> Path:
    return Path(os.environ.get("MODELSCOPE_CACHE", Path.home() / ".cache" / "modelscope" / "hub")).expanduser()


def huggingface_snapshot(repo_id: str) -> Path | None:
    """The cached snapshot of ``repo_id``, or None."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HFValidationError, LocalEntryNotFoundError

    try:
        return Path(snapshot_download(repo_id, local_files_only=True, cache_dir=huggingface_cache_dir()))
    except (LocalEntryNotFoundError, HFValidationError, OSError):
        return None


def modelscope_snapshot(model_id: str) -> Path | None:
    """The ModelScope cache folder of ``model_id`` (``MODELSCOPE_CACHE`` or ``~/.cache/modelscope/hub``), or None.

    ModelScope stores a model under ``models/OWNER/NAME`` (dots in the name written ``___``), older
    versions directly under ``OWNER/NAME``.
    """
    owner, name = model_id.split("/")
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
    root = modelscope_cache_root()
    for base in (root / "models", root):
        if not base.is_dir():
            continue
        owners = (p for p in base.iterdir() if p.is_dir() and not p.name.startswith((".", "_")))
        for owner in sorted(o for o in owners if base != root or o.name not in ("models", "datasets")):
            for model in sorted(p for p in owner.iterdir() if p.is_dir()):
                yield f"{owner.name}/{model.name.replace('___', '.')}", model
