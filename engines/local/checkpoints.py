"""Reading model folders safely: config files, and weights through safetensors or a weights-only unpickler."""

from __future__ import annotations

import json
import pickle
import re
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from zhbench.engines.errors import ModelLoadError, UnsafeCheckpointError
from zhbench.engines.local.file_reads import read_regular_text
from zhbench.plain.file_kinds import kind_of

if TYPE_CHECKING:
    import torch

SAFETENSORS_FILE = "model.safetensors"
PICKLE_FILE = "pytorch_model.bin"
SAFETENSORS_INDEX = "model.safetensors.index.json"
PICKLE_INDEX = "pytorch_model.bin.index.json"


#: how a torch checkpoint starts: a zip archive (torch 1.6 and later), or a legacy pickle (protocol 2+)
_TORCH_MAGIC = (b"PK\x03\x04", b"\x80")


def _check_torch_file(path: Path) -> None:
    """Refuse a file that cannot be a torch checkpoint before torch's reader meets it."""
    try:
        with path.open("rb") as file:
            head = file.read(4)
    except OSError as exc:
        raise ModelLoadError(path, f"unreadable weights ({exc.strerror or exc})") from None
    if not head:
        raise ModelLoadError(path, "unreadable weights (an empty file)")
    if not head.startswith(_TORCH_MAGIC):
        raise ModelLoadError(path, "unreadable weights (not a torch checkpoint: neither its zip archive nor a pickle)")


def one_line(exc: BaseException) -> str:
    """An exception as one line: its first line, or its type when it says nothing."""
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0]}" if text else type(exc).__name__


def read_json(path: Path) -> dict[str, Any]:
    """A JSON object from a model folder, or a ``ModelLoadError`` naming the file."""
    try:
        data = json.loads(read_regular_text(path))
    except FileNotFoundError:
        raise ModelLoadError(path.parent, f"missing {path.name}") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelLoadError(path, f"unreadable JSON ({exc})") from None
    except RecursionError:  # the decoder recurses once per level of nesting
        raise ModelLoadError(path, "unreadable JSON (nested too deeply)") from None
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
    """Raise a ``ModelLoadError`` naming the first of ``names`` missing from ``folder``, or the first file in it
    that is a FIFO, a device or a socket (transformers passes over a FIFO ``tokenizer.json`` and fails on
    "an empty vocabulary"; a library that opened one would wait for a writer)."""
    for name in names:
        if not (folder / name).is_file():
            raise ModelLoadError(folder, f"missing {name}")
    for entry in sorted(folder.iterdir()):
        try:
            kind = kind_of(entry.stat().st_mode)
        except OSError:  # a dangling link: nothing reads it
            continue
        if kind is not None and kind != "a folder":
            raise ModelLoadError(entry, f"is {kind}, not a regular file")


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
            names = list(dict.fromkeys(str(v) for v in weight_map.values()))
            for name in names:
                if Path(name).name != name or name in ("", ".", ".."):  # a shard is a file of this folder
                    raise ModelLoadError(index, f"refused: it names {name!r}, outside the model folder")
            shards = [folder / name for name in names]
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

    _check_torch_file(path)
    try:
        try:
            loaded = torch.load(str(path), map_location="cpu", weights_only=True, mmap=True)
        except RuntimeError as exc:
            if "mmap" not in str(exc):
                raise
            # Checkpoints saved before torch 1.6 use the legacy format, which cannot be memory-mapped.
            loaded = torch.load(str(path), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        # torch's restricted unpickler refused something: whatever its wording, it was more than tensors.
        found = re.search(r"GLOBAL ([\w.]+)", str(exc))
        asks = f"asks for {found.group(1)}" if found else "asks for more than plain tensors"
        raise UnsafeCheckpointError(
            path, f"refused: its pickle {asks}, which could run code; only plain tensors are loaded"
        ) from None
    except Exception as exc:  # torch's reader fails in many ways on a damaged file (KeyError, IndexError, …)
        raise ModelLoadError(path, f"unreadable weights ({one_line(exc)})") from None
    if isinstance(loaded, Mapping) and "state_dict" in loaded and isinstance(loaded["state_dict"], Mapping):
        loaded = loaded["state_dict"]
    if not isinstance(loaded, Mapping) or not all(isinstance(v, torch.Tensor) for v in loaded.values()):
        raise ModelLoadError(path, "not a state dict (expected a mapping of names to tensors)")
    return dict(loaded)


#: a config's size fields: each must be a positive whole number
SIZE_FIELDS = (
    "n_layer", "n_head", "n_embd", "n_positions", "n_ctx", "num_layers", "num_decoder_layers", "num_hidden_layers",
    "num_heads", "num_attention_heads", "num_key_value_heads", "hidden_size", "intermediate_size", "d_model",
    "d_ff", "d_kv", "vocab_size", "max_position_embeddings",
)  # fmt: skip
#: past any published model's (the longest context, Llama 4 Scout's, is 10,485,760 positions; the widest
#: vocabulary about 262,144): a larger size is a broken or hostile config whose tensors would overflow
MAX_SIZE = 2**24
#: the fields that count layers, which the weights must hold
LAYER_FIELDS = ("n_layer", "num_layers", "num_decoder_layers", "num_hidden_layers")
#: a layer's index in a weight's name: GPT-2's ``h.N.``, Llama and Qwen's ``layers.N.``, T5 and EVA's ``block.N.``
_LAYER_INDEX = re.compile(r"(?:^|\.)(?:h|layers|block|blocks)\.(\d+)\.")


def check_sizes(path: Path, config: Mapping[str, Any]) -> None:
    """Refuse a config whose sizes are not positive whole numbers up to ``MAX_SIZE``, naming the first, before
    any model is built (or its memory estimated)."""
    for name in SIZE_FIELDS:
        value = config.get(name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise ModelLoadError(path, f"{name} is {value!r}; it must be a positive whole number")
        if isinstance(value, int) and value > MAX_SIZE:
            raise ModelLoadError(path, f"{name} is {value:,}, past any model's (at most {MAX_SIZE:,})")


def check_layers_against_weights(folder: Path, config: Mapping[str, Any], state: Mapping[str, Any]) -> None:
    """Refuse a config that asks for more layers than the weights hold (a model of 100000 layers would
    take minutes and all the memory to build before failing)."""
    indices = [int(found) for name in state for found in _LAYER_INDEX.findall(name)]
    held = max(indices, default=-1) + 1
    for name in LAYER_FIELDS:
        asked = config.get(name)
        if isinstance(asked, int) and asked > held:
            raise ModelLoadError(folder, f"config.json asks for {name} {asked}; the weights hold {held} layers")
