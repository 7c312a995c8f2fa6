"""The one way zhbench writes a whole file: its config, a batch run's ``run.json``, an export, a report, the
GGUF family's digest cache. Below every room (it imports nothing else of zhbench), so the engines use it too.

A file is written whole or not at all: into a file beside it, flushed and fsynced, renamed over it, and the
folder fsynced so the rename itself survives a power cut. A full disk leaves the old file as it was (or none),
never a cut one. Only a regular file is ever replaced: a FIFO, a device, a socket or a folder at the target is
refused before anything is opened (writing "to" ``/dev/null`` must not replace the device node, nor a FIFO
hang). A symbolic link to a file is followed, so a config kept in a dotfiles folder stays linked.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from pathlib import Path

from zhbench.plain.errors import ZhbenchError
from zhbench.plain.file_kinds import kind_of


class FileWriteError(ZhbenchError, OSError):
    """A file that was not written, and why, in one line that names it (an ``OSError`` too, so a caller that
    handles a failed write handles it)."""


class NotAFileToWrite(FileWriteError):
    """A target that is there but is no regular file: a FIFO, a device, a socket or a folder."""


def write_atomically(path: Path, data: str | bytes) -> None:
    """Write ``data`` (text as UTF-8) to ``path`` whole or not at all; ``FileWriteError`` when ``path`` is
    not a regular file or the write failed (the old file, if any, is then untouched)."""
    target = writable_target(path)
    payload = data.encode("utf-8") if isinstance(data, str) else data
    scratch = target.with_name(f".{target.name}.{secrets.token_hex(4)}.part")
    try:
        with scratch.open("xb") as file:
            with contextlib.suppress(FileNotFoundError):  # a new file takes the umask's mode, an old one keeps its own
                os.chmod(file.fileno(), stat.S_IMODE(target.stat().st_mode))
            file.write(payload)
            file.flush()
            os.fsync(file.fileno())
        os.replace(scratch, target)
    except BaseException as exc:
        scratch.unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise FileWriteError(f"{path}: not written ({exc.strerror or exc}); any old file is unchanged") from None
        raise
    _sync_folder(target.parent)


def writable_target(path: Path) -> Path:
    """Where writing ``path`` puts the file: ``path``, or the file a symbolic link at it names. Refused with
    ``FileWriteError``: anything there that is not a regular file, and a missing folder."""
    target = Path(os.path.realpath(path)) if path.is_symlink() else path
    try:  # the path itself, links followed: a link to a pipe (/dev/stderr piped) names no file realpath can find
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        if not target.parent.is_dir():
            raise FileWriteError(f"{path}: no such folder {target.parent}") from None
        return target
    except OSError as exc:
        raise FileWriteError(f"{path}: cannot be written ({exc.strerror or exc})") from None
    kind = kind_of(mode)
    if kind is not None:
        raise NotAFileToWrite(f"{path} is {kind}, not a regular file: give the name of a file to write")
    return target


def _sync_folder(folder: Path) -> None:
    """Make a rename in ``folder`` durable; a system with no such call for folders (Windows) is left to it."""
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)
