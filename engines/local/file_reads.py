"""Reading a file zhbench was pointed at (a config, a prompt file, a model's ``config.json``) only when it is
a regular file: a FIFO would block the read until something writes to it (forever), a device can stream
without end, and a folder is no file. The check is made on the opened file itself, opened without
blocking, so nothing can swap the path between the check and the read."""

from __future__ import annotations

import os
from pathlib import Path
from typing import BinaryIO

from zhbench.plain.file_kinds import kind_of


class NotAFileError(OSError):
    """A path that is not a regular file (an ``OSError``, so a reader's handling of unreadable files holds)."""


def open_regular(path: Path) -> BinaryIO:
    """The regular file at ``path`` opened to read bytes (a link to one is followed); ``NotAFileError`` at
    once for a FIFO, a device, a socket or a folder."""
    descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK)  # opening a FIFO would wait for a writer
    try:
        kind = kind_of(os.fstat(descriptor).st_mode)
        if kind is not None:
            raise NotAFileError(f"{path} is {kind}, not a regular file")
        os.set_blocking(descriptor, True)
        return os.fdopen(descriptor, "rb")
    except BaseException:
        os.close(descriptor)
        raise


def read_regular_text(path: Path, *, encoding: str = "utf-8") -> str:
    """The text of the regular file at ``path``, refused as ``open_regular`` refuses (``UnicodeDecodeError``
    as ``bytes.decode`` raises it)."""
    with open_regular(path) as file:
        return file.read().decode(encoding)
