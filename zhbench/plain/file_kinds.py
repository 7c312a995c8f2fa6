"""What a path is when it is not a regular file: a reader and a writer both refuse those by name."""

from __future__ import annotations

import stat

#: what a path that is not a regular file is, by the kind ``stat`` reports
_KINDS = (
    (stat.S_ISDIR, "a folder"),
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def kind_of(mode: int) -> str | None:
    """What a file of this ``st_mode`` is when it is not a regular file (``"a FIFO"``), else None."""
    return next((kind for test, kind in _KINDS if test(mode)), None)
