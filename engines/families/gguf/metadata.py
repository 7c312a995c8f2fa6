"""What a GGUF file's header says, read without loading the model and without any extra installed.

A GGUF file (https://github.com/ggml-org/ggml/blob/master/docs/gguf.md) is a header (magic ``GGUF``, a
version, the tensor and key-value counts, the key-value pairs, then one entry per tensor: name, shape,
type, offset) followed by the aligned tensor data. ``read_header`` walks the header only: it never touches
a tensor's data, and it skips the large arrays (a 150k-token vocabulary and its merges) by their lengths
instead of building them. The ``gguf`` package's own ``GGUFReader`` builds every array element as a numpy
view (16 s and 540 MB for Qwen2's vocabulary on the development machine), far too slow for a model list,
and it comes only with the ``gguf`` extra; this reader needs the standard library alone. Its two small
tables (file-type names and block sizes) are llama.cpp's, checked against the ``gguf`` package in tests.

Every length and count is checked against the file's size, so a truncated or corrupt file is one clear
``GGUFError`` line, never a huge allocation or a hang.
"""

from __future__ import annotations

import mmap
import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from zhbench.engines.errors import ModelLoadError

MAGIC = b"GGUF"
#: GGUF versions this reader knows (1 used 32-bit counts and is long gone)
VERSIONS = (2, 3)
DEFAULT_ALIGNMENT = 32
#: arrays of at most this many elements are read into ``GGUFHeader.values``; longer ones are skipped
#: (their lengths are kept in ``GGUFHeader.array_lengths``): the vocabulary, its scores, types and merges
MAX_KEPT_ARRAY = 1024
#: bounds that no real file comes near: beyond them the header is corrupt
MAX_KEYS = 1 << 20
MAX_TENSORS = 1 << 24
MAX_DIMS = 8

#: GGUF value types: the fixed-size ones by their struct format, then string and array
_SCALARS: dict[int, str] = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}
_STRING, _ARRAY = 8, 9

#: ggml tensor types: name, elements per block, bytes per block (``ggml.h`` / ``gguf.GGML_QUANT_SIZES``)
GGML_TYPES: dict[int, tuple[str, int, int]] = {
    0: ("F32", 1, 4),
    1: ("F16", 1, 2),
    2: ("Q4_0", 32, 18),
    3: ("Q4_1", 32, 20),
    6: ("Q5_0", 32, 22),
    7: ("Q5_1", 32, 24),
    8: ("Q8_0", 32, 34),
    9: ("Q8_1", 32, 40),
    10: ("Q2_K", 256, 84),
    11: ("Q3_K", 256, 110),
    12: ("Q4_K", 256, 144),
    13: ("Q5_K", 256, 176),
    14: ("Q6_K", 256, 210),
    15: ("Q8_K", 256, 292),
    16: ("IQ2_XXS", 256, 66),
    17: ("IQ2_XS", 256, 74),
    18: ("IQ3_XXS", 256, 98),
    19: ("IQ1_S", 256, 50),
    20: ("IQ4_NL", 32, 18),
    21: ("IQ3_S", 256, 110),
    22: ("IQ2_S", 256, 82),
    23: ("IQ4_XS", 256, 136),
    24: ("I8", 1, 1),
    25: ("I16", 1, 2),
    26: ("I32", 1, 4),
    27: ("I64", 1, 8),
    28: ("F64", 1, 8),
    29: ("IQ1_M", 256, 56),
    30: ("BF16", 1, 2),
    34: ("TQ1_0", 256, 54),
    35: ("TQ2_0", 256, 66),
    39: ("MXFP4", 32, 17),
    40: ("NVFP4", 64, 36),
    41: ("Q1_0", 128, 18),
}

#: ``general.file_type`` (llama.cpp's ``llama_ftype``) -> the name quantized files are published under
FILE_TYPES: dict[int, str] = {
    0: "F32",
    1: "F16",
    2: "Q4_0",
    3: "Q4_1",
    7: "Q8_0",
    8: "Q5_0",
    9: "Q5_1",
    10: "Q2_K",
    11: "Q3_K_S",
    12: "Q3_K_M",
    13: "Q3_K_L",
    14: "Q4_K_S",
    15: "Q4_K_M",
    16: "Q5_K_S",
    17: "Q5_K_M",
    18: "Q6_K",
    19: "IQ2_XXS",
    20: "IQ2_XS",
    21: "Q2_K_S",
    22: "IQ3_XS",
    23: "IQ3_XXS",
    24: "IQ1_S",
    25: "IQ4_NL",
    26: "IQ3_S",
    27: "IQ3_M",
    28: "IQ2_S",
    29: "IQ2_M",
    30: "IQ4_XS",
    31: "IQ1_M",
    32: "BF16",
    36: "TQ1_0",
    37: "TQ2_0",
    38: "MXFP4_MOE",
    39: "NVFP4",
    40: "Q1_0",
    41: "Q2_0",
}

#: the header keys whose ids end a reply: end of sequence, end of turn, end of message
END_ID_KEYS = ("tokenizer.ggml.eos_token_id", "tokenizer.ggml.eot_token_id", "tokenizer.ggml.eom_token_id")
SAMPLING_PREFIX = "general.sampling."

Value = int | float | bool | str | list[object]


class GGUFError(ModelLoadError):
    """A GGUF file that cannot be read: not GGUF, truncated, corrupt, or of an unknown version."""


@dataclass(frozen=True)
class TensorInfo:
    name: str
    shape: tuple[int, ...]
    ggml_type: int
    #: offset of its data from the start of the data section
    offset: int

    @property
    def elements(self) -> int:
        count = 1
        for dim in self.shape:
            count *= dim
        return count

    @property
    def type_name(self) -> str:
        return GGML_TYPES[self.ggml_type][0] if self.ggml_type in GGML_TYPES else f"type {self.ggml_type}"

    @property
    def nbytes(self) -> int | None:
        """Bytes of its data, or None for a tensor type this table does not know."""
        if self.ggml_type not in GGML_TYPES:
            return None
        _, block, size = GGML_TYPES[self.ggml_type]
        return self.elements // block * size


@dataclass(frozen=True)
class GGUFHeader:
    """A GGUF file's header: its key-value pairs (short arrays included) and its tensors."""

    path: Path
    version: int
    file_size: int
    #: where the tensor data starts (aligned)
    data_offset: int
    values: Mapping[str, Value]
    #: the length of every array, kept or skipped (``tokenizer.ggml.tokens`` -> the vocabulary size)
    array_lengths: Mapping[str, int]
    tensors: tuple[TensorInfo, ...] = field(repr=False)

    # --- typed access ------------------------------------------------------------------------------

    def string(self, key: str) -> str | None:
        value = self.values.get(key)
        return value if isinstance(value, str) else None

    def integer(self, key: str) -> int | None:
        value = self.values.get(key)
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    def number(self, key: str) -> float | None:
        value = self.values.get(key)
        return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None

    def arch_integer(self, key: str) -> int | None:
        """``{architecture}.{key}``: the model's shape lives under its architecture's name."""
        return self.integer(f"{self.architecture}.{key}")

    # --- what a model list, a fit estimate and the engine need ---------------------------------------

    @property
    def architecture(self) -> str:
        return self.string("general.architecture") or ""

    @property
    def name(self) -> str | None:
        return self.string("general.name")

    @property
    def file_type(self) -> int | None:
        return self.integer("general.file_type")

    @property
    def quantization(self) -> str:
        """The quantization type as files are published under (``Q4_K_M``, ``Q8_0``, ``F16``): the header's
        ``general.file_type``, else the type holding most of the weights' bytes."""
        file_type = self.file_type
        if file_type is not None and file_type in FILE_TYPES:
            return FILE_TYPES[file_type]
        by_type: dict[str, int] = {}
        for tensor in self.tensors:
            if len(tensor.shape) >= 2:
                by_type[tensor.type_name] = by_type.get(tensor.type_name, 0) + (tensor.nbytes or 0)
        return max(by_type, key=by_type.__getitem__) if by_type else "unknown"

    @property
    def parameter_count(self) -> int:
        return sum(tensor.elements for tensor in self.tensors)

    @property
    def tensor_bytes(self) -> int:
        """Bytes of this file's tensor data (one part's, for a split model)."""
        return max(0, self.file_size - self.data_offset)

    @property
    def context_length(self) -> int | None:
        """The context the model was trained for (``{arch}.context_length``)."""
        return self.arch_integer("context_length")

    @property
    def layer_count(self) -> int | None:
        return self.arch_integer("block_count")

    @property
    def head_count(self) -> int | None:
        return self.arch_integer("attention.head_count")

    @property
    def kv_head_count(self) -> int | None:
        """Key-value heads (grouped-query attention); the head count where the header names none."""
        return self.arch_integer("attention.head_count_kv") or self.head_count

    @property
    def head_size(self) -> tuple[int, int] | None:
        """(key, value) size of one attention head: the header's ``attention.key_length`` and
        ``value_length``, else the embedding width over the head count, as llama.cpp reads them."""
        width, heads = self.arch_integer("embedding_length"), self.head_count
        default = width // heads if width and heads else None
        key = self.arch_integer("attention.key_length") or default
        value = self.arch_integer("attention.value_length") or default
        return (key, value) if key and value else None

    def kv_cache_bytes(self, n_ctx: int, bytes_per_element: int = 2) -> int | None:
        """Bytes of the key-value cache at ``n_ctx`` positions (llama.cpp keeps it in F16 by default)."""
        layers, kv_heads, sizes = self.layer_count, self.kv_head_count, self.head_size
        if not layers or not kv_heads or sizes is None:
            return None
        return layers * n_ctx * kv_heads * (sizes[0] + sizes[1]) * bytes_per_element

    @property
    def vocab_size(self) -> int | None:
        return self.array_lengths.get("tokenizer.ggml.tokens")

    @property
    def chat_template(self) -> str | None:
        return self.string("tokenizer.chat_template")

    @property
    def bos_id(self) -> int | None:
        return self.integer("tokenizer.ggml.bos_token_id")

    @property
    def end_ids(self) -> frozenset[int]:
        """The ids the header names as ending a reply: end of sequence, of turn, of message."""
        return frozenset(i for i in (self.integer(key) for key in END_ID_KEYS) if i is not None)

    @property
    def sampling(self) -> dict[str, Value]:
        """The model's recommended sampling settings (``general.sampling.top_k`` -> ``top_k``), where it has any."""
        return {key[len(SAMPLING_PREFIX) :]: v for key, v in self.values.items() if key.startswith(SAMPLING_PREFIX)}

    @property
    def split_count(self) -> int:
        """How many files the model is split into (1 for a single file)."""
        return self.integer("split.count") or 1


class _Cursor:
    """Reads little-endian GGUF fields from a mapped file, every length checked against its size."""

    def __init__(self, data: mmap.mmap | bytes, path: Path) -> None:
        self.data = data
        self.size = len(data)
        self.pos = 0
        self.path = path

    def fail(self, reason: str) -> GGUFError:
        return GGUFError(self.path, reason)

    def take(self, count: int) -> int:
        start = self.pos
        if count < 0 or start + count > self.size:
            raise self.fail(f"truncated GGUF file (its header runs past the end, at byte {start})")
        self.pos = start + count
        return start

    def scalar(self, kind: int) -> int | float | bool:
        fmt = _SCALARS[kind]
        start = self.take(struct.calcsize(fmt))
        value: int | float | bool = struct.unpack_from("<" + fmt, self.data, start)[0]
        return value

    def uint(self, fmt: str) -> int:
        start = self.take(struct.calcsize(fmt))
        value: int = struct.unpack_from("<" + fmt, self.data, start)[0]
        return value

    def string(self) -> str:
        length = self.uint("Q")
        start = self.take(length)
        return bytes(self.data[start : start + length]).decode("utf-8", errors="replace")

    def skip_string(self) -> None:
        self.take(self.uint("Q"))

    def value(self, kind: int, key: str, lengths: dict[str, int]) -> Value | None:
        """A value of ``kind``; None for an array too long to keep (its length goes into ``lengths``)."""
        if kind in _SCALARS:
            return self.scalar(kind)
        if kind == _STRING:
            return self.string()
        if kind != _ARRAY:
            raise self.fail(f"corrupt GGUF header (value type {kind} of {key!r} is unknown)")
        element, count = self.uint("I"), self.uint("Q")
        lengths[key] = count
        if element in _SCALARS and count * struct.calcsize(_SCALARS[element]) > self.size - self.pos:
            raise self.fail(f"truncated GGUF file (array {key!r} of {count} items runs past the end)")
        if count <= MAX_KEPT_ARRAY:
            items = [self.value(element, key, {}) for _ in range(count)]
            return [item for item in items if item is not None]
        if element in _SCALARS:
            self.take(count * struct.calcsize(_SCALARS[element]))
        elif element == _STRING:
            for _ in range(count):
                self.skip_string()
        else:
            for _ in range(count):
                self.value(element, key, {})
        return None


def looks_like_gguf(path: Path) -> bool:
    """Whether a file starts with GGUF's magic (never raises)."""
    try:
        with path.open("rb") as handle:
            return handle.read(4) == MAGIC
    except OSError:
        return False


def read_header(path: Path) -> GGUFHeader:
    """The header of the GGUF file at ``path``; a ``GGUFError`` (one line) when it is not a readable one.

    The file is memory-mapped read-only and only the header's pages are touched."""
    try:
        with path.open("rb") as handle:
            size = path.stat().st_size
            if size < 24:
                raise GGUFError(path, f"not a GGUF file ({size} bytes)")
            with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as data:
                return _parse(_Cursor(data, path), size)
    except OSError as exc:
        raise GGUFError(path, f"cannot read: {exc.strerror or exc}") from None


def _parse(cursor: _Cursor, size: int) -> GGUFHeader:
    path = cursor.path
    if cursor.data[:4] != MAGIC:
        raise GGUFError(path, "not a GGUF file (it does not start with GGUF)")
    cursor.take(4)
    version = cursor.uint("I")
    if version not in VERSIONS:
        swapped = int.from_bytes(version.to_bytes(4, "little"), "big")
        if swapped in VERSIONS:
            raise GGUFError(path, "a big-endian GGUF file; llama.cpp on this machine reads little-endian ones")
        raise GGUFError(path, f"GGUF version {version} is not one zhbench reads (it reads {VERSIONS})")
    tensor_count, key_count = cursor.uint("Q"), cursor.uint("Q")
    if tensor_count > MAX_TENSORS or key_count > MAX_KEYS:
        raise GGUFError(path, f"corrupt GGUF header ({tensor_count} tensors, {key_count} keys)")
    values: dict[str, Value] = {}
    lengths: dict[str, int] = {}
    for _ in range(key_count):
        key = cursor.string()
        value = cursor.value(cursor.uint("I"), key, lengths)
        if value is not None:
            values[key] = value
    tensors = []
    for _ in range(tensor_count):
        name = cursor.string()
        dims = cursor.uint("I")
        if dims > MAX_DIMS:
            raise GGUFError(path, f"corrupt GGUF header (tensor {name!r} has {dims} dimensions)")
        shape = tuple(cursor.uint("Q") for _ in range(dims))
        tensors.append(TensorInfo(name, shape, cursor.uint("I"), cursor.uint("Q")))
    alignment = values.get("general.alignment", DEFAULT_ALIGNMENT)
    if not isinstance(alignment, int) or alignment <= 0 or alignment & (alignment - 1):
        raise GGUFError(path, f"corrupt GGUF header (alignment {alignment!r})")
    data_offset = -(-cursor.pos // alignment) * alignment
    header = GGUFHeader(path, version, size, data_offset, values, lengths, tuple(tensors))
    _check_tensor_data(header)
    return header


def _check_tensor_data(header: GGUFHeader) -> None:
    """Refuse a file whose tensors' data would run past its end (a download cut short)."""
    end = 0
    for tensor in header.tensors:
        nbytes = tensor.nbytes
        if nbytes is not None:
            end = max(end, header.data_offset + tensor.offset + nbytes)
    if end > header.file_size:
        missing = end - header.file_size
        raise GGUFError(
            header.path,
            f"truncated GGUF file: its tensors need {end:,} bytes, the file has {header.file_size:,} "
            f"({missing:,} missing; an interrupted download?)",
        )
