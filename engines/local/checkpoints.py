"""Reading model folders safely: config files, and weights through safetensors or a weights-only unpickler."""

from __future__ import annotations

import json
import pickle
import re
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engines.errors import ModelLoadError, UnsafeCheckpointError

if TYPE_CHECKING:
    import torch

SAFETENSORS_FILE = "model.safetensors"
PICKLE_FILE = "pytorch_model.bin"
SAFETENSORS_INDEX = "model.safetensors.index.json"
PICKLE_INDEX = "pytorch_model.bin.index.json"


def read_json(path: Path) -> dict[str, Any]:
    """A JSON object from a model folder, or a ``ModelLoadError`` naming the file."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelLoadError(path.parent, f"missing {path.name}") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelLoadError(path, f"unreadable JSON ({exc})") from None
    if not isinstance(data, dict):
        raise ModelLoadError(path, "expected a JSON object")
    return data


def config_model_type(folder: Path) -> str | None:
    """``model_type`` of a folder's ``config.json``; None when there is no config (a broken one raises)."""
    if not (folder / "config.json").is_file():
        return None
    model_type = read_json(folder / "config.json").get("model_type")
    return model_type if isinstance(model_type, str) else None


def require_files(folder: Path, *names: str) -> None:
    """Raise a ``ModelLoadError`` naming the first of ``names`` missing from ``folder``."""
    for name in names:
        if not (folder / name).is_file():
            raise ModelLoadError(folder, f"missing {name}")


def lacking_weights(where: Path, missing: list[str]) -> ModelLoadError:
    """The error for weights the model needs that the files lack, naming the first of them."""
    more = f" and {len(missing) - 1} more" if len(missing) > 1 else ""
    return ModelLoadError(where, f"weights lack {missing[0]}{more}")


def weight_files(folder: Path) -> list[Path]:
    """The weight files of a transformers-style folder, safetensors first; sharded indexes are followed."""
    for index_name in (SAFETENSORS_INDEX, PICKLE_INDEX):
        index = folder / index_name
        if index.is_file():
            weight_map = read_json(index).get("weight_map")
            if not isinstance(weight_map, Mapping):
                raise ModelLoadError(index, 'no "weight_map" in the shard index')
            shards = [folder / name for name in dict.fromkeys(str(v) for v in weight_map.values())]
            for shard in shards:
                if not shard.is_file():
                    raise ModelLoadError(folder, f"missing shard {shard.name} named in {index_name}")
            return shards
    for name in (SAFETENSORS_FILE, PICKLE_FILE):
        if (folder / name).is_file():
            return [folder / name]
    raise ModelLoadError(folder, f"no weights: expected {SAFETENSORS_FILE} or {PICKLE_FILE}")


def load_state_dict(folder: Path) -> dict[str, torch.Tensor]:
    """All tensors of a folder's weights, on the CPU, never running code from a pickle."""
    state: dict[str, torch.Tensor] = {}
    for path in weight_files(folder):
        state.update(load_weight_file(path))
    return state


def load_weight_file(path: Path) -> dict[str, torch.Tensor]:
    """One weight file: safetensors, or a torch pickle read with ``weights_only=True``.

    A pickle that asks for anything but tensors and plain containers is refused by torch's
    restricted unpickler before any of it runs; that becomes an ``UnsafeCheckpointError``.
    """
    if path.suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return load_file(str(path))
        except (SafetensorError, OSError) as exc:
            raise ModelLoadError(path, f"unreadable safetensors weights ({exc})") from None

    import torch

    try:
        try:
            loaded = torch.load(str(path), map_location="cpu", weights_only=True, mmap=True)
        except RuntimeError as exc:
            if "mmap" not in str(exc):
                raise
            # Checkpoints saved before torch 1.6 use the legacy format, which cannot be memory-mapped.
            loaded = torch.load(str(path), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        found = re.search(r"Unsupported global: GLOBAL (\S+)", str(exc))
        if found is None:
            raise ModelLoadError(path, "unreadable weights (not a torch checkpoint)") from None
        raise UnsafeCheckpointError(
            path, f"refused: its pickle asks for {found.group(1)}, which could run code; only plain tensors are loaded"
        ) from None
    except (RuntimeError, EOFError, OSError, ValueError) as exc:
        raise ModelLoadError(path, f"unreadable weights ({str(exc).splitlines()[0]})") from None
    if isinstance(loaded, Mapping) and "state_dict" in loaded and isinstance(loaded["state_dict"], Mapping):
        loaded = loaded["state_dict"]
    if not isinstance(loaded, Mapping) or not all(isinstance(v, torch.Tensor) for v in loaded.values()):
        raise ModelLoadError(path, "not a state dict (expected a mapping of names to tensors)")
    return dict(loaded)
