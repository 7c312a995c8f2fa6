"""From what a person types (a folder, a file, a hub id, an Ollama name) to the files of a model on this machine."""

from __future__ import annotations

from pathlib import Path

from zhbench.engines.errors import ModelNotFoundError
from zhbench.engines.hub.ollama import find_ollama_model
from zhbench.engines.hub.sources import HUBS


def resolve_model(spec: str) -> Path:
    """A local path as given, the weights of a model in Ollama's store (``qwen2.5:7b``), or the local snapshot
    of a hub id in the Hugging Face or ModelScope cache.

    Nothing is downloaded: a hub id must already be in a cache.
    """
    path = Path(spec).expanduser()
    if path.exists():
        return path.resolve()
    ollama = find_ollama_model(spec) if ":" in spec or "/" not in spec else None  # OWNER/NAME: a hub id
    if ollama is not None:
        if ollama.problem is not None:
            raise ModelNotFoundError(f"{spec} (Ollama): {ollama.problem}")
        return ollama.blob
    if spec.count("/") == 1 and not spec.startswith((".", "/", "~")):
        for hub in HUBS.values():
            found = hub.snapshot(spec)
            if found is not None:
                return found
        raise ModelNotFoundError(
            f"{spec}: not a local path, and not in the local Hugging Face or ModelScope cache (nothing is downloaded)"
        )
    raise ModelNotFoundError(f"{spec}: no such file or folder")
