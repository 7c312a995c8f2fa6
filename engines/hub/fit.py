"""Will a model fit? An estimate of the memory a local model needs, made before loading it, and a verdict
against what is free.

need = weights at the dtype (or RWKV strategy) it will run in, counted from the weight files' headers
       without loading them (safetensors: the JSON header; torch ``.bin``/``.pth``: the pickle's storage
       records, read by an unpickler that builds nothing)
     + key/value cache at the context it will use (layers x kv heads x head dim x positions x 2 x bytes),
       or RWKV's state
     + a measured overhead (``bench/bench_fit.py``, figures in docs/benchmarks.md); a prompt's activations
       are not counted apart: they stayed within that overhead on the shapes measured.

The memory free is the caller's reading (NVML for a GPU, available RAM for the CPU): see
``workbench.session.fit_check``.
"""

from __future__ import annotations

import json
import pickle
import struct
import zipfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from math import prod
from pathlib import Path
from typing import Any, Literal

from zhbench.engines.errors import ModelLoadError

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
#: (164 MB; bench/bench_fit.py, docs/benchmarks.md "Memory fit")
CPU_OVERHEAD_BYTES = 160 * 2**20
#: on a GPU: the CUDA context and the kernels torch loads (about 0.3-0.5 GiB on current GPUs; not measured
#: here, where there is no GPU), taken at the upper end
CUDA_OVERHEAD_BYTES = 512 * 2**20
#: the context a chat-template model is counted at when its own is longer: a long chat, not a 128k-token one
DEFAULT_CONTEXT_CAP = 8192
#: encoder-decoder models (T5, EVA2.0): input plus reply positions the key/value cache is counted at
ENCODER_DECODER_CONTEXT = 768 + 512
#: a verdict is "tight" when the need is above this share of what is free
TIGHT_SHARE = 0.85

Verdict = Literal["fits", "tight", "does not fit", "unknown"]


@dataclass(frozen=True)
class TensorInfo:
    dtype: str
    numel: int
    element_bytes: int
    floating: bool
    #: the storage it is a view of, in a torch checkpoint: tied weights (GPT-2's ``lm_head`` and ``wte``) share one
    storage: str | None = None


@dataclass(frozen=True)
class MemoryNeed:
    """What loading a model will take, by part, on the device it runs on (and in RAM beside, for RWKV)."""

    device: str  # "cpu", "cuda" or "cuda:N"
    placement: str  # the dtype, or the RWKV strategy
    weights_bytes: int
    cache_bytes: int  # key/value cache, or RWKV state
    overhead_bytes: int
    context: int  # positions the cache is counted at
    ram_bytes: int = 0  # a GPU load's part that stays in RAM (RWKV's embedding and streamed layers)

    @property
    def total_bytes(self) -> int:
        return self.weights_bytes + self.cache_bytes + self.overhead_bytes


@dataclass(frozen=True)
class FitVerdict:
    need: MemoryNeed
    free_bytes: int | None  # None: could not be read
    verdict: Verdict
    suggestion: str | None = None

    def line(self) -> str:
        """One line for a person: the verdict, the need against what is free, and what would fit."""
        need = _gb(self.need.total_bytes)
        parts = f"weights {_gb(self.need.weights_bytes)} + cache {_gb(self.need.cache_bytes)} at {self.need.context} "
        parts += f"positions + overhead {_gb(self.need.overhead_bytes)}"
        free = "free unknown" if self.free_bytes is None else f"{_gb(self.free_bytes)} free"
        text = f"{self.verdict}: needs about {need} on {self.need.device} ({self.need.placement}; {parts}), {free}"
        return text + (f"; {self.suggestion}" if self.suggestion else "")


def _gb(count: int) -> str:
    return f"{count / 1e9:.2f} GB"


# --- weights from the files' headers ------------------------------------------------------------------


def weight_tensors(path: Path) -> dict[str, TensorInfo]:
    """Every tensor of a model's weights (a folder, or one weight file) with its stored dtype and size,
    read from the headers: nothing is loaded and no code runs."""
    found: dict[str, TensorInfo] = {}
    for file in _weight_files(path):
        found |= _safetensors_header(file) if file.suffix == ".safetensors" else _torch_records(file)
    return found


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
    try:
        with file.open("rb") as handle:
            (length,) = struct.unpack("<Q", handle.read(8))
            header = json.loads(handle.read(length))
    except (OSError, struct.error, ValueError) as exc:
        raise ModelLoadError(file, f"unreadable safetensors header ({exc})") from None
    tensors = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        dtype, size, floating = _SAFETENSORS.get(entry["dtype"], (entry["dtype"].lower(), 1, False))
        tensors[name] = TensorInfo(dtype, prod(entry["shape"]), size, floating)
    return tensors


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
    folder = path if path.is_dir() else path.parent
    try:
        data = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


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


# --- RWKV strategies ----------------------------------------------------------------------------------


def rwkv_stages(strategy: str, n_layer: int) -> list[tuple[str, str, bool]]:
    """``(device, dtype, 8-bit weights)`` of each of the ``n_layer + 1`` slots (the last: ``ln_out`` and
    ``head``), as rwkv 0.8's ``RWKV.__init__`` assigns them (``*N`` fixed counts, the rest shared out,
    ``*N+`` streamed layers counted on the stage's device)."""
    stages = [stage.split() for stage in strategy.split("->")]
    if any(len(stage) < 2 or stage[1].removesuffix("i8") not in ("fp32", "fp16", "bf16") for stage in stages):
        raise ValueError(f"not an RWKV strategy zhbench can estimate: {strategy!r}")
    slots = n_layer + 1
    plan = [0] * len(stages)
    allocated, free_slots, stream = 0, 0, -1
    for i, stage in enumerate(stages):
        if len(stage) > 2:
            plan[i] = int(stage[2].strip("*+"))
            stream = i if stage[2].endswith("+") else stream
            allocated += plan[i]
            if allocated >= slots:
                plan[i] += slots - allocated
                break
        else:
            free_slots += 1
    if stream < 0:
        for i in range(len(stages)):
            if plan[i] == 0 and free_slots and slots > allocated:
                plan[i] = (slots - allocated) // free_slots
                allocated += plan[i]
                free_slots -= 1
        plan[-1] += max(slots - allocated, 0)
    else:
        plan[stream] += max(slots - allocated, 0)
    kinds = {"fp32": "float32", "fp16": "float16", "bf16": "bfloat16"}
    return [
        (stage[0], kinds[stage[1].removesuffix("i8")], stage[1].endswith("i8"))
        for stage, count in zip(stages, plan, strict=True)
        for _ in range(count)
    ]


def _rwkv_need(tensors: Mapping[str, TensorInfo], strategy: str) -> MemoryNeed:
    n_layer = 1 + max(int(name.split(".")[1]) for name in tensors if name.startswith("blocks."))
    n_embd = next(t.numel for name, t in tensors.items() if name == "ln_out.weight")
    slots = rwkv_stages(strategy, n_layer)
    by_device: dict[str, int] = {}
    matrices = ("key.weight", "value.weight", "receptance.weight", "output.weight", "head.weight")
    for name, tensor in tensors.items():
        if name.startswith("emb."):  # rwkv keeps the embedding in RAM whatever the strategy (model.py)
            device, dtype, eight_bit = "cpu", slots[0][1], False
        else:
            slot = n_layer if name.startswith(("ln_out.", "head.")) else int(name.split(".")[1])
            device, dtype, eight_bit = slots[slot] if name.startswith(("blocks.", "ln_out.", "head.")) else slots[0]
        if eight_bit and name.endswith(matrices):
            # uint8 weights plus four vectors of per-row and per-column scales in the stage's dtype
            size = tensor.numel + 2 * int(tensor.numel**0.5) * 2 * DTYPE_BYTES[dtype]
        elif ".time_decay" in name:
            size = tensor.numel * 4  # kept in fp32 (model.py)
        else:
            size = tensor.numel * DTYPE_BYTES[dtype]
        by_device[device] = by_device.get(device, 0) + size
    device = slots[0][0]
    state = 5 * n_layer * n_embd * 4 * 2  # five fp32 vectors a layer; a saved copy for the next turn
    on_gpu = device != "cpu"
    return MemoryNeed(
        device=device,
        placement=f"strategy '{strategy}'",
        weights_bytes=by_device.pop(device, 0),
        cache_bytes=state,
        overhead_bytes=CUDA_OVERHEAD_BYTES if on_gpu else CPU_OVERHEAD_BYTES,
        context=0,
        ram_bytes=sum(by_device.values()),
    )


# --- the estimate and the verdict ---------------------------------------------------------------------


def estimate_need(
    path: Path,
    family: str,
    *,
    device: str,
    dtype: str | None = None,
    strategy: str | None = None,
    cuda_dtype: str = "float32",
    context: int | None = None,
    tensors: Mapping[str, TensorInfo] | None = None,
) -> MemoryNeed:
    """The memory loading the model at ``path`` on ``device`` will take. ``dtype`` as asked, else
    ``cuda_dtype`` (the family's) on a GPU and float32 on the CPU; RWKV: ``strategy``, else ``device``
    in fp16 (GPU) or fp32 (CPU), as ChatRWKV defaults. ``tensors``: ``weight_tensors(path)`` when already read."""
    tensors = weight_tensors(path) if tensors is None else tensors
    on_gpu = device.startswith("cuda")
    if family == "rwkv4":
        if strategy is None:
            kind = {"float32": "fp32", "float16": "fp16", "bfloat16": "bf16"}[
                dtype or ("float16" if on_gpu else "float32")
            ]
            strategy = f"{device} {kind}"
        return _rwkv_need(tensors, strategy)
    dtype = dtype or (cuda_dtype if on_gpu else "float32")
    cache, positions = kv_cache_bytes(_config(path), DTYPE_BYTES[dtype], context)
    return MemoryNeed(
        device=device,
        placement=dtype,
        weights_bytes=weights_bytes(tensors, dtype),
        cache_bytes=cache,
        overhead_bytes=CUDA_OVERHEAD_BYTES if on_gpu else CPU_OVERHEAD_BYTES,
        context=positions,
    )


def verdict_for(need_bytes: int, free_bytes: int | None) -> Verdict:
    if free_bytes is None:
        return "unknown"
    if need_bytes <= free_bytes * TIGHT_SHARE:
        return "fits"
    return "tight" if need_bytes <= free_bytes else "does not fit"


def judge_fit(
    need: MemoryNeed,
    free: Mapping[str, int | None],
    *,
    others_bytes: int = 0,
    alternative: Callable[[str, str | None, str | None], MemoryNeed] | None = None,
) -> FitVerdict:
    """The verdict for ``need`` against ``free`` (bytes free by device, ``"cpu"`` for RAM), with a suggestion
    when it does not fit: a smaller dtype or RWKV strategy, the CPU, or unloading the other pane (which holds
    ``others_bytes`` on that device). ``alternative(device, dtype, strategy)`` estimates another placement."""
    free_here = free.get(need.device, free.get("cuda") if need.device.startswith("cuda") else None)
    verdict = verdict_for(need.total_bytes, free_here)
    if need.ram_bytes and verdict != "unknown":  # a GPU load's part in RAM must fit there too
        ram = verdict_for(need.ram_bytes, free.get("cpu"))
        verdict = max(verdict, ram, key=("fits", "tight", "unknown", "does not fit").index)
    if verdict != "does not fit":
        return FitVerdict(need, free_here, verdict)
    return FitVerdict(need, free_here, verdict, _suggestion(need, free, free_here, others_bytes, alternative))


def _suggestion(
    need: MemoryNeed,
    free: Mapping[str, int | None],
    free_here: int | None,
    others_bytes: int,
    alternative: Callable[[str, str | None, str | None], MemoryNeed] | None,
) -> str | None:
    def fits(other: MemoryNeed) -> bool:
        here = free.get(other.device, free_here if other.device == need.device else None)
        return verdict_for(other.total_bytes, here) != "does not fit" and (
            not other.ram_bytes or verdict_for(other.ram_bytes, free.get("cpu")) != "does not fit"
        )

    if alternative is not None:
        rwkv = need.placement.startswith("strategy")
        on_gpu = need.device.startswith("cuda")
        tries: list[tuple[str, str | None, str | None, str]] = []
        if rwkv and on_gpu:
            # the fewest 8-bit layers that fit (RWKV-4 has at most 40 layers; more i8 layers only shrink it)
            tries += [
                (need.device, None, f"{need.device} fp16i8 *{k} -> {need.device} fp16", "--strategy")
                for k in range(1, 42)
            ]
        elif not rwkv:
            tries += [(need.device, d, None, "--dtype") for d in ("bfloat16", "float16") if d != need.placement]
        tries.append(("cpu", None, "cpu fp32" if rwkv else None, "--device cpu"))
        for device, dtype, strategy, option in tries:
            try:
                other = alternative(device, dtype, strategy)
            except (ValueError, KeyError, IndexError):
                continue
            if other == need or not fits(other):
                continue
            shown = (
                f"--strategy '{strategy}'"
                if option == "--strategy"
                else (f"--dtype {dtype}" if option == "--dtype" else "--device cpu")
            )
            return f"{shown} would fit (about {_gb(other.total_bytes)})"
    if (
        others_bytes
        and free_here is not None
        and verdict_for(need.total_bytes, free_here + others_bytes) != "does not fit"
    ):
        return f"unloading the other pane would free {_gb(others_bytes)}, enough for it"
    return "--force to try anyway"
