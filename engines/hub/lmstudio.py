"""LM Studio's models folder: the GGUF files LM Studio downloaded, read in place.

LM Studio keeps ``PUBLISHER/REPOSITORY/FILE.gguf`` under ``~/.lmstudio/models`` (versions before 0.3 under
``~/.cache/lm-studio/models``). Each chat-model file is one model (a split model's parts are one, projector
files none), named ``PUBLISHER/REPOSITORY/FILE.gguf`` as LM Studio shows it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from zhbench.engines.families.gguf.files import chat_model_files

#: where LM Studio keeps models, the current folder first
FOLDERS = (Path("~/.lmstudio/models"), Path("~/.cache/lm-studio/models"))


def lmstudio_models() -> Iterator[tuple[str, Path]]:
    """``(PUBLISHER/REPOSITORY/FILE.gguf, file)`` of every model in LM Studio's folders."""
    for folder in (candidate.expanduser() for candidate in FOLDERS):
        if not folder.is_dir():
            continue
        for repository in sorted(p for p in folder.glob("*/*") if p.is_dir()):
            for file in chat_model_files(repository.iterdir()):
                yield file.relative_to(folder).as_posix(), file
