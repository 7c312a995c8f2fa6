"""A model file's sha256, computed once and kept in zhbench's own cache (never beside the model).

A verdict between two quantizations must name exactly the files compared; hashing a multi-gigabyte GGUF
takes seconds, so the digest is kept by the file's resolved path, size and modification time, and computed
again only when one of those changes.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import platformdirs

from zhbench.engines.local.file_reads import open_regular, read_regular_text
from zhbench.plain.file_writes import write_atomically

#: digests kept at most (the oldest go first)
MAX_ENTRIES = 1000
CHUNK = 1 << 20


def cache_path() -> Path:
    return Path(platformdirs.user_cache_dir("zhbench", appauthor=False)) / "gguf-sha256.json"


def file_sha256(path: Path) -> str:
    """The file's sha256 (hex), from the cache when the file is unchanged since it was computed."""
    stat = path.stat()
    key = f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"
    cache = _read(cache_path())
    if isinstance(cache.get(key), str):
        return str(cache[key])
    digest = hashlib.sha256()
    with open_regular(path) as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    cache[key] = digest.hexdigest()
    _write(cache_path(), dict(list(cache.items())[-MAX_ENTRIES:]))
    return digest.hexdigest()


def _read(path: Path) -> dict[str, object]:
    try:
        data = json.loads(read_regular_text(path))
    except (OSError, ValueError):  # a FIFO or a folder in its place too (NotAFileError), never waited on
        return {}  # none yet, or unreadable: computed again and rewritten
    return data if isinstance(data, dict) else {}


def _write(path: Path, data: dict[str, object]) -> None:
    """Replace the cache file whole and durably (a reader never sees half of it, a full disk or a power cut
    leaves the old one); a cache that cannot be written is skipped."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(path, json.dumps(data))
    except OSError:  # a FileWriteError too: the digest stands, it is computed again next time
        pass
