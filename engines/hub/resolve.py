"""From what a person types (a folder, a ``.pth`` file, a hub id) to the files of a model on this machine."""

from __future__ import annotations

from pathlib import Path

from zhbench.engines.errors import ModelNotFoundError
from zhbench.engines.hub.caches import huggingface_snapshot, modelscope_snapshot


def resolve_model(spec: str) -> Path:
    """A local path as given, or the local snapshot of a hub id in the Hugging Face or ModelScope cache.

    Nothing is downloaded: a hub id must already be in a cache.
    """
    path = Path(spec).expanduser()
    if path.exists():
        return path.resolve()
    if spec.count("/") == 1 and not spec.startswith((".", "/", "~")):
        for finder in (huggingface_snapshot, modelscope_snapshot):
            found = finder(spec)
            if found is not None:
                return found
        raise ModelNotFoundError(
            f"{spec}: not a local path, and not in the local Hugging Face or ModelScope cache (nothing is downloaded)"
        )
    raise ModelNotFoundError(f"{spec}: no such file or folder")
