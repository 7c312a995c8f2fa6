"""What a local model's weights and key/value cache take, counted from its files' headers without loading
them (safetensors: the JSON header; torch ``.bin``/``.pth``: the pickle's storage records, read by an
unpickler that builds nothing), and the estimate of a checkpoint loaded through transformers.

A family with other needs (RWKV's strategies, GGUF's quantized tensors) fills ``FamilySpec.estimate_memory``
with its own, built from these parts; ``engines.hub.fit`` turns an estimate into a verdict.
"""

from __future__ import annotations

import functools
import json
import os
import pickle
import struct
import zipfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from math import prod
from pathlib import Path
from types import MappingProxyType
from typing import Any

from zhbench.engines.api import LoadOptions, MemoryNeed
from zhbench.engines.errors import ModelLoadError
from zhbench.engines.local.file_reads import open_regular

#: the longest header the safetensors library itself reads (``MAX_HEADER_SIZE`` in its Rust crate)
SAFETENSORS_HEADER_LIMIT = 100_000_000
#: bytes per element of the dtypes a model runs in
DTYPE_BYTES = {"float32": 4, "float16": 2, "bfloat16": 2, "float64": 8}
#: safetensors' dtype names, and torch's storage class names, as (dtype, bytes per element, floating?)
_SAFETENSORS = {
    "F64": ("float64", 8, True), "F32": ("float32", 4, True), "F16": ("float16", 2, True),
    "BF16": ("bfloat16", 2, True), "I64": ("int64", 8, False), "I32": ("int32", 4, False),
    "I16": ("int16", 2, False), "I8": ("int8", 1, False), "U8": ("uint8", 1, False), "BOOL": ("bool", 1, False),
}  # fmt: skip
_STORAGES = {
    "DoubleStorage": _SAFETENSORS["F64"], "FloatStorage": _SAFETENSORS["F32"], "HalfStorage": _SAFETENSORS["F16"],
    "BFloat16Storage": _SAFETENSORS["BF16"], "LongStorage": _SAFETENSORS["I64"], "IntStorage": _SAFETENSORS["I32"],
    "ShortStorage": _SAFETENSORS["I16"], "CharStorage": _SAFETENSORS["I8"], "ByteStorage": _SAFETENSORS["U8"],
    "BoolStorage": _SAFETENSORS["BOOL"],
}  # fmt: skip

#: what a load costs on the CPU beyond weights and cache, whatever the model: the modules a first load and
#: reply import, torch's thread pools and first buffers, the tokenizer, a prompt's activations; measured as
#: the peak RSS of a load and a reply above the RSS after the imports, for the tiny gpt2-dialogbot stand-in
#: (164 MB; benchmarks/bench_fit.py, docs/benchmarks.md "Memory fit")
CPU_OVERHEAD_BYTES = 160 * 2**20
#: on a GPU: the CUDA context and the kernels torch loads (about 0.3-0.5 GiB on current GPUs; not measured
#: here, where there is no GPU), taken at the upper end
CUDA_OVERHEAD_BYTES = 512 * 2**20
#: the context a chat-template model is counted at when its own is longer: a long chat, not a 128k-token one
DEFAULT_CONTEXT_CAP = 8192
#: encoder-decoder models (T5, EVA2.0): input plus reply positions the key/value cache is counted at
ENCODER_DECODER_CONTEXT = 768 + 512


@dataclass(frozen=True)
class TensorInfo:
    dtype: str
    numel: int
    element_bytes: int
    floating: bool
    #: the storage it is a view of, in a torch checkpoint: tied weights (GPT-2's ``lm_head`` and ``wte``) share one
    storage: str | None = None


# --- weights from the files' headers ------------------------------------------------------------------


def weight_tensors(path: Path) -> Mapping[str, TensorInfo]:
    """Every tensor of a model's weights (a folder, or one weight file) with its stored dtype and size,
    read from the headers: nothing is loaded and no code runs. Read once per file version (a fit check
    estimates several placements of one model)."""
    files = _weight_files(path)
    try:
        versions = tuple((file, file.stat().st_mtime_ns, file.stat().st_size) for file in files)
    except OSError as exc:
        raise ModelLoadError(path, f"unreadable weights ({exc.strerror})") from None
    return _tensors_of(versions)


@functools.lru_cache(maxsize=16)
def _tensors_of(versions: tuple[tuple[Path, int, int], ...]) -> Mapping[str, TensorInfo]:
    found: dict[str, TensorInfo] = {}
    for file, _, _ in versions:
        found |= _safetensors_header(file) if file.suffix == ".safetensors" else _torch_records(file)
    return MappingProxyType(found)


def _weight_files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    checkpoints = sorted(path.glob("*.pth"))
    if checkpoints and not (path / "config.json").is_file():
        if len(checkpoints) > 1:
            raise ModelLoadError(path, f"holds {len(checkpoints)} .pth checkpoints; pass the one to load")
        return checkpoints
    from zhbench.engines.local.checkpoints import weight_files

    return weight_files(path)


def _safetensors_header(file: Path) -> dict[str, TensorInfo]:
    """The tensors a safetensors header lists, each checked as the format defines it: a length within the
    file (and safetensors' own 100 MB cap), a JSON object, and per tensor a dtype name and a shape of sizes
    whose bytes the file can hold. A header that lies is one ``ModelLoadError`` line, never a traceback."""

    def lie(what: str) -> ModelLoadError:
        return ModelLoadError(file, f"not a safetensors file: {what}")

    try:
        with open_regular(file) as handle:
            file_bytes = os.fstat(handle.fileno()).st_size
            start = handle.read(8)
            if len(start) < 8:
                raise lie("shorter than the 8 bytes giving its header's length")
            (length,) = struct.unpack("<Q", start)
            if length > min(file_bytes - 8, SAFETENSORS_HEADER_LIMIT):
                raise lie(f"its header is said to be {length:,} bytes, in a file of {file_bytes:,}")
            header = json.loads(handle.read(length))
    except (OSError, ValueError) as exc:
        raise ModelLoadError(file, f"unreadable safetensors header ({exc})") from None
    except RecursionError:  # the decoder recurses once per level of nesting
        raise lie("its header is nested too deeply") from None
    if not isinstance(header, dict):
        raise lie(f"its header is a JSON {type(header).__name__}, not an object")
    tensors = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        dtype_name = entry.get("dtype") if isinstance(entry, dict) else None
        shape = entry.get("shape") if isinstance(entry, dict) else None
        if not isinstance(dtype_name, str) or not isinstance(shape, list) or not _is_shape(shape):
            raise lie(f"tensor {name[:80]!r} has no dtype name and shape (a list of sizes)")
        dtype, size, floating = _SAFETENSORS.get(dtype_name, (dtype_name.lower(), 1, False))
        tensors[name] = TensorInfo(dtype, prod(shape), size, floating)
        if tensors[name].numel * size > file_bytes:
            raise lie(f"tensor {name[:80]!r} of shape {shape} would take more bytes than the file has")
    return tensors


def _is_shape(shape: list[Any]) -> bool:
    return all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in shape)


class _RecordingUnpickler(pickle.Unpickler):
    """Reads a torch checkpoint's pickle without building anything: classes become inert stand-ins and each
    tensor the (dtype, element count) its storage record and shape say."""

    def find_class(self, module: str, name: str) -> Any:
        if name in _STORAGES:
            return _STORAGES[name]
        if name in ("_rebuild_tensor_v2", "_rebuild_tensor"):
            return _tensor_record
        if name == "_rebuild_parameter":
            return lambda data, *rest: data
        if name == "OrderedDict":
            return _StateDict
        return _Inert

    def persistent_load(self, pid: Any) -> Any:
        # ('storage', storage type, key, location, element count): the storage type is one of _STORAGES
        return (*pid[1], str(pid[2]))


def _tensor_record(storage: tuple[str, int, bool, str], offset: int, shape: Sequence[int], *rest: Any) -> TensorInfo:
    dtype, size, floating, key = storage
    return TensorInfo(dtype, prod(shape), size, floating, key)


class _StateDict(dict[str, Any]):
    """A state dict's ``OrderedDict``: a dict that takes the ``_metadata`` attribute torch sets on it."""


class _Inert:
    """Whatever else a checkpoint's pickle names (its classes are never imported)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def __setstate__(self, state: Any) -> None:
        pass

    def __setitem__(self, key: Any, value: Any) -> None:
        pass


def _torch_records(file: Path) -> dict[str, TensorInfo]:
    """A torch zip checkpoint's tensors from its ``data.pkl``; a legacy (pre-1.6) one by its size, as fp32."""
    try:
        with zipfile.ZipFile(file) as archive:
            pickled = next(n for n in archive.namelist() if n.endswith("/data.pkl") or n == "data.pkl")
            loaded = _RecordingUnpickler(archive.open(pickled)).load()
    except zipfile.BadZipFile:
        return {file.name: TensorInfo("float32", file.stat().st_size // 4, 4, True)}
    except (OSError, StopIteration, pickle.UnpicklingError, EOFError, AttributeError, TypeError) as exc:
        raise ModelLoadError(file, f"unreadable torch checkpoint ({type(exc).__name__})") from None
    if isinstance(loaded, dict) and isinstance(loaded.get("state_dict"), dict):
        loaded = loaded["state_dict"]
    if not isinstance(loaded, dict):
        raise ModelLoadError(file, "not a state dict (expected a mapping of names to tensors)")
    return {
        str(name): replace(info, storage=f"{file.name}:{info.storage}")
        for name, info in loaded.items()
        if isinstance(info, TensorInfo)
    }


def weights_bytes(tensors: Mapping[str, TensorInfo], dtype: str) -> int:
    """Bytes of the weights with their floating tensors in ``dtype`` (integer buffers stay as stored); a
    storage several tensors share is counted once."""
    target = DTYPE_BYTES[dtype]
    counted: set[str] = set()
    total = 0
    for tensor in tensors.values():
        if tensor.storage is not None:
            if tensor.storage in counted:
                continue
            counted.add(tensor.storage)
        total += tensor.numel * (target if tensor.floating else tensor.element_bytes)
    return total


# --- the key/value cache ------------------------------------------------------------------------------


def _config(path: Path) -> dict[str, Any]:
    """A checkpoint's ``config.json`` with its sizes checked (none: ``{}``); a broken one is refused as the
    load refuses it, so the fit check names the problem rather than estimating from a guess."""
    from zhbench.engines.local.checkpoints import check_sizes, read_json

    file = (path if path.is_dir() else path.parent) / "config.json"
    if not os.path.lexists(file):
        return {}
    config = read_json(file)
    check_sizes(file, config)
    return config


def _first(config: Mapping[str, Any], *names: str) -> int | None:
    return next((int(config[n]) for n in names if isinstance(config.get(n), int)), None)


def kv_cache_bytes(config: Mapping[str, Any], element_bytes: int, context: int | None) -> tuple[int, int]:
    """The key/value cache of a transformers model at ``context`` positions (default: its own, capped), and
    the positions counted: decoder layers x kv heads x head dim x positions x 2 (keys and values) x bytes."""
    layers = _first(config, "num_decoder_layers", "num_hidden_layers", "n_layer", "num_layers") or 0
    heads = _first(config, "num_attention_heads", "n_head", "num_heads") or 1
    kv_heads = _first(config, "num_key_value_heads") or heads
    width = _first(config, "hidden_size", "n_embd", "d_model") or 0
    head_dim = _first(config, "head_dim", "d_kv") or width // heads
    if context is None:
        if config.get("is_encoder_decoder") or "d_kv" in config:
            context = ENCODER_DECODER_CONTEXT  # decoder self-attention over the reply, cross-attention over the input
        else:
            context = min(_first(config, "n_positions", "max_position_embeddings") or 2048, DEFAULT_CONTEXT_CAP)
    return layers * kv_heads * head_dim * context * 2 * element_bytes, context


# --- a checkpoint loaded through transformers ---------------------------------------------------------


def overhead_bytes(device: str) -> int:
    """What a load costs beyond weights and cache on ``device``, whatever the model."""
    return CUDA_OVERHEAD_BYTES if device.startswith("cuda") else CPU_OVERHEAD_BYTES


def checkpoint_need(
    path: Path, options: LoadOptions, dtype_on: Callable[[str], str], context: int | None
) -> MemoryNeed:
    """The memory a transformers checkpoint at ``path`` takes loaded with ``options``: its weights in the dtype
    asked (else ``dtype_on(device)``, the family's), plus its key/value cache at ``context`` positions (default:
    its own, capped), plus the overhead. No device asked: the one the load would choose."""
    from zhbench.engines.local.devices import resolve_device, resolve_dtype

    device = resolve_device(options.device)
    dtype = resolve_dtype(options.dtype, device, "float32") if options.dtype else dtype_on(device)
    cache, positions = kv_cache_bytes(_config(path), DTYPE_BYTES[dtype], context)
    return MemoryNeed(
        device=device,
        placement=dtype,
        weights_bytes=weights_bytes(weight_tensors(path), dtype),
        cache_bytes=cache,
        overhead_bytes=overhead_bytes(device),
        context=positions,
    )
