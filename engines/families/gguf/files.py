"""Which GGUF files are chat models, and which files make one model.

A model split by llama.cpp's ``gguf-split`` is its parts ``NAME-00001-of-00003.gguf`` ... ``-00003-of-00003.gguf``:
one model, loaded from the first part (llama.cpp finds the others beside it). A multimodal projector
(``mmproj-*.gguf``, ``*-mmproj-f16.gguf``) goes with a vision model and is no chat model of its own.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

SUFFIX = ".gguf"
#: ``-00001-of-00003.gguf``: part 1 of 3 (llama.cpp's ``llama_split_path`` format, ``%s-%05d-of-%05d.gguf``)
SPLIT_PART = re.compile(r"^(?P<stem>.+)-(?P<part>\d{5})-of-(?P<count>\d{5})\.gguf$", re.IGNORECASE)


def is_projector(name: str) -> bool:
    """Whether the file named ``name`` is a multimodal projector: not a chat model."""
    return "mmproj" in name.rsplit("/", 1)[-1].lower()


def split_parts(first: Path) -> list[Path]:
    """The files of the model whose (first) file is ``first``: its parts in order for a split model (those
    present), else ``[first]``."""
    split = SPLIT_PART.match(first.name)
    if split is None:
        return [first]
    count, width = int(split["count"]), len(split["part"])
    return [
        part
        for number in range(1, count + 1)
        if (part := first.with_name(f"{split['stem']}-{number:0{width}d}-of-{split['count']}{SUFFIX}")).is_file()
    ]


def missing_parts(first: Path) -> int:
    """How many parts of a split model are not beside its first (0 for a whole one)."""
    split = SPLIT_PART.match(first.name)
    return int(split["count"]) - len(split_parts(first)) if split is not None else 0


def chat_model_files(files: Iterable[Path]) -> list[Path]:
    """Of ``files``, the GGUF files that each stand for one chat model: whole files and the first part of a
    split one, projectors left out, in name order."""
    chosen = []
    for file in sorted(files):
        if file.suffix.lower() != SUFFIX or is_projector(file.name):
            continue
        split = SPLIT_PART.match(file.name)
        if split is None or int(split["part"]) == 1:
            chosen.append(file)
    return chosen
