"""What a GGUF model takes and what it is, from its header alone (the family's ``estimate_memory`` and
``facts`` hooks): its tensors' bytes (every part of a split model) plus llama.cpp's F16 key/value cache at
the context used (layers x KV heads x (key + value head size) x positions x 2 bytes), plus the overhead."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from pathlib import Path

from zhbench.engines.api import LoadOptions, MemoryNeed, ModelFacts
from zhbench.engines.families.gguf.files import missing_parts, split_parts
from zhbench.engines.families.gguf.metadata import GGUFError, GGUFHeader, read_header
from zhbench.engines.local.footprint import DEFAULT_CONTEXT_CAP, overhead_bytes

#: bytes per element of llama.cpp's default key/value cache (``type_k``/``type_v`` F16)
KV_CACHE_ELEMENT_BYTES = 2


def model_headers(path: Path) -> list[GGUFHeader]:
    """The headers of every file of the model at ``path`` (its parts, for a split model), each read once per
    file version; a ``GGUFError`` naming a part that is missing."""
    missing = missing_parts(path)
    if missing:
        raise GGUFError(path, f"{missing} of its split parts are not beside it (an interrupted download?)")
    return [_header(part, *_version(part)) for part in split_parts(path)]


def _version(path: Path) -> tuple[int, int]:
    try:
        stat = path.stat()
    except OSError as exc:
        raise GGUFError(path, f"cannot read: {exc.strerror or exc}") from None
    return stat.st_mtime_ns, stat.st_size


@functools.lru_cache(maxsize=64)
def _header(path: Path, mtime_ns: int, size: int) -> GGUFHeader:
    return read_header(path)


def estimate_memory(path: Path, options: LoadOptions, context: int | None) -> MemoryNeed:
    """A GGUF load's need: the tensors as stored (quantized, read in place) and the cache at ``context``
    positions, else the load's ``n_ctx`` option, else the trained context capped as for the other families."""
    headers = model_headers(path)
    first = headers[0]
    trained = first.context_length or DEFAULT_CONTEXT_CAP
    asked = options.extra.get("n_ctx")
    positions = context or (
        min(int(asked), trained) if asked and asked.isdigit() else min(trained, DEFAULT_CONTEXT_CAP)
    )
    device = options.device or "cpu"
    return MemoryNeed(
        device=device,
        placement=first.quantization,
        weights_bytes=sum(header.tensor_bytes for header in headers),
        cache_bytes=first.kv_cache_bytes(positions, KV_CACHE_ELEMENT_BYTES) or 0,
        overhead_bytes=overhead_bytes(device),
        context=positions,
    )


def fallbacks(need: MemoryNeed) -> Sequence[LoadOptions]:
    """On a GPU, the CPU; another quantization is another file, so on the CPU nothing."""
    return [LoadOptions(device="cpu")] if need.device.startswith("cuda") else []


def facts(path: Path) -> ModelFacts:
    """The parameter count (every part's tensors) and the quantization type from the header."""
    headers = model_headers(path)
    return ModelFacts(
        parameters=sum(header.parameter_count for header in headers), quantization=headers[0].quantization
    )
