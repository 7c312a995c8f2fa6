"""A hub repository of GGUF files (``Qwen/Qwen2.5-0.5B-Instruct-GGUF``): the quantizations it offers, told by
their file names as such repositories name them (``qwen2.5-0.5b-instruct-q4_k_m.gguf``,
``Qwen2.5-7B-Instruct-Q8_0.gguf``, ``yi-6b.Q8_0.gguf``, ``...-fp16-00001-of-00004.gguf``), and the files of one.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from zhbench.engines.families.gguf.files import SPLIT_PART, SUFFIX, is_projector
from zhbench.engines.families.gguf.metadata import FILE_TYPES

#: other spellings repositories use for a type
_ALIASES = {"FP16": "F16", "FP32": "F32", "BF16": "BF16"}
_NAMES = sorted({*FILE_TYPES.values(), *_ALIASES}, key=len, reverse=True)
#: a type's name between separators (``-``, ``.``, ``_`` or the ends), longest names first
_QUANT = re.compile(r"(?<![A-Za-z0-9])(" + "|".join(map(re.escape, _NAMES)) + r")(?![A-Za-z0-9])", re.IGNORECASE)


def quant_name(text: str) -> str:
    """A quantization type as typed (``q4_k_m``, ``fp16``) in the spelling files are published under."""
    upper = text.strip().upper()
    return _ALIASES.get(upper, upper)


def quantization_of(name: str) -> str | None:
    """The quantization type a GGUF file's name says (``Q4_K_M``), upper case; None when it names none."""
    file = name.rsplit("/", 1)[-1]
    split = SPLIT_PART.match(file)
    stem = split["stem"] if split else file.removesuffix(SUFFIX).removesuffix(SUFFIX.upper())
    found = _QUANT.findall(stem)
    if not found:
        return None
    return quant_name(found[-1])


def quantizations(names: Iterable[str]) -> dict[str, list[str]]:
    """The repository's chat-model GGUF files by the quantization their names say (in name order; a split
    model's parts together); projectors and files naming no type are left out."""
    offered: dict[str, list[str]] = {}
    for name in sorted(names):
        if name.lower().endswith(SUFFIX) and not is_projector(name):
            quant = quantization_of(name)
            if quant is not None:
                offered.setdefault(quant, []).append(name)
    return offered

