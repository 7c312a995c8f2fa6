"""One name per model, whichever way it was loaded, and a fingerprint of what it is.

Every vote, batch answer, transcript and leaderboard row names a model by ``model_identity``'s id: the hub
id of a model in a hub cache (``Qwen/Qwen2.5-0.5B-Instruct``, with ``/FILE`` for one checkpoint of a
repository that holds several), ``SERVER/MODEL`` for a server's model, the store's own name where a source
names its files (``NAMERS``: Ollama's ``name:tag``), else the folder's (or file's) name. So a model loaded by
its path, by its row in the model list or by its hub id gets the same id, since all three load the same files.

Beside the id goes a fingerprint of the content: ``revision:HASH`` for a hub snapshot, else
``sha256:HEX`` of the weights (of the one weights file, or of ``sha256sum``'s lines for several). Two
different models that share a folder name have the same id and different fingerprints, which is how the
leaderboard tells them apart. A file's digest is kept in ``fingerprints.json`` in the data folder by path,
size and time, so a model is read whole for it once.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from zhbench.engines.api import ChatEngine
from zhbench.engines.hub import ollama
from zhbench.engines.hub.modelscope import modelscope_cache_root
from zhbench.workbench.session.config import data_dir
from zhbench.workbench.session.file_writes import write_atomically

#: the files that hold a model's weights, in the formats the families read
WEIGHT_SUFFIXES = frozenset({".safetensors", ".bin", ".pth", ".pt", ".gguf", ".ckpt"})
#: how much of a file is read at a time while hashing it
HASH_CHUNK_BYTES = 1 << 20
#: where a hub client keeps a repository's revisions: ``…/snapshots/REVISION/…``
SNAPSHOTS = "snapshots"

#: what names a model file from a store that names its own (``path -> id``, or None when the path is not
#: one of its files), asked before the hub caches' layouts: Ollama's manifests name a weights blob
#: ``name:tag``. Another such source adds its own function here.
Namer = Callable[[Path], str | None]
NAMERS: list[Namer] = [ollama.blob_name]

_cache_lock = threading.Lock()


@dataclass(frozen=True)
class ModelIdentity:
    """A model's one name, and what its content is (None where it cannot be read: a server's model)."""

    id: str
    fingerprint: str | None = None

    @property
    def short_fingerprint(self) -> str:
        return short_fingerprint(self.fingerprint)


def short_fingerprint(fingerprint: str | None) -> str:
    """The first eight hex digits of a fingerprint, enough to tell two apart on screen; ``?`` for none."""
    return fingerprint.partition(":")[2][:8] if fingerprint else "?"


def model_identity(engine: ChatEngine, *, fingerprint: bool = True) -> ModelIdentity:
    """The id of the loaded ``engine``'s model, and (unless not wanted) its fingerprint. Local weights are
    hashed the first time (read whole: call this off the screen's thread)."""
    info = engine.describe()
    if info.path is None:
        server, model = info.details.get("server"), info.details.get("server_model")
        return ModelIdentity(f"{server}/{model}" if server and model else model or server or info.family)
    path = Path(info.path)
    try:
        content = path_fingerprint(path) if fingerprint else None
    except OSError:  # a file that cannot be read whole: the model still has its name
        content = None
    return ModelIdentity(path_model_id(path), content)


def recorded_model_id(name: str | None, path: str | None) -> str:
    """The id of a model a record names ``name`` with its weights at ``path``: read from the path where
    there is one (a record written before ids named a model as it was given: ``/path/to/chatyuan``), else
    the name (a server's model)."""
    return path_model_id(Path(path)) if path else name or "?"


def path_model_id(path: Path) -> str:
    """The id of the model whose files are at ``path``, from the path alone (no file is read)."""
    for namer in NAMERS:
        named = namer(path)
        if named is not None:
            return named
    snapshot = hub_snapshot(path)
    if snapshot is not None:
        repo_id, _, rest = snapshot
        return "/".join((repo_id, *rest))
    return path.name or str(path)


def hub_snapshot(path: Path) -> tuple[str, str | None, tuple[str, ...]] | None:
    """``(hub id, revision, parts below the repository's folder)`` of a path in a Hugging Face or ModelScope
    cache, as their clients lay them out; None for a path elsewhere. The layouts:

    - Hugging Face: ``…/models--OWNER--NAME/snapshots/REVISION/…``
    - ModelScope's current client: ``…/models/OWNER--NAME/snapshots/REVISION/…``
    - ModelScope up to 1.37: ``ROOT/models/OWNER/NAME/…`` (dots in NAME written ``___``) or ``ROOT/OWNER/NAME/…``
    """
    parts = path.parts
    for index in range(1, len(parts) - 1):
        if parts[index] != SNAPSHOTS:
            continue
        repo, revision, rest = parts[index - 1], parts[index + 1], tuple(parts[index + 2 :])
        if repo.startswith("models--"):  # an id without an owner (``gpt2``) too
            return repo.removeprefix("models--").replace("--", "/"), revision, rest
        if index >= 2 and parts[index - 2] == "models" and "--" in repo:
            return repo.replace("--", "/", 1), revision, rest
    root = modelscope_cache_root()
    if not path.is_relative_to(root):
        return None
    below = path.relative_to(root).parts
    below = below[1:] if below[:1] == ("models",) else below
    if len(below) < 2 or below[0] in ("models", "datasets", "hub"):
        return None
    return f"{below[0]}/{below[1].replace('___', '.')}", None, tuple(below[2:])


def path_fingerprint(path: Path) -> str | None:
    """``revision:HASH`` for a hub snapshot with a revision, else ``sha256:HEX`` of the weights under
    ``path`` (None when there are none to read)."""
    snapshot = hub_snapshot(path)
    if snapshot is not None and snapshot[1] is not None:
        return f"revision:{snapshot[1]}"
    named = ollama.blob_digest(path)  # Ollama names a blob by its digest, which it checked when it pulled it
    if named is not None:
        return f"sha256:{named}"
    files = weight_files(path)
    if not files:
        return None
    digests = _file_digests(files)
    if len(files) == 1:
        return f"sha256:{digests[0]}"
    pairs = zip(files, digests, strict=True)
    lines = "".join(f"{digest}  {file.relative_to(path).as_posix()}\n" for file, digest in pairs)
    return "sha256:" + hashlib.sha256(lines.encode()).hexdigest()


def weight_files(path: Path) -> list[Path]:
    """The weights files of a model: ``path`` itself when it is a file, else those under it, in name order."""
    if path.is_file():
        return [path]
    if not path.is_dir():
        return []
    return sorted(p for p in path.rglob("*") if p.suffix in WEIGHT_SUFFIXES and p.is_file())


def fingerprints_path() -> Path:
    """Where each weights file's digest is kept, so a model is read whole once, not at every load."""
    return data_dir() / "fingerprints.json"


def _file_digests(files: list[Path]) -> list[str]:
    """The sha256 of each file, from the kept digests where the file's size and time are unchanged."""
    with _cache_lock:
        kept = _read_kept()
        digests, changed = [], False
        for file in files:
            resolved = file.resolve()
            stat = resolved.stat()
            key, stamp = str(resolved), [stat.st_size, stat.st_mtime_ns]
            entry = kept.get(key)
            if isinstance(entry, list) and len(entry) == 3 and entry[:2] == stamp and isinstance(entry[2], str):
                digests.append(entry[2])
                continue
            digest = _sha256(resolved)
            kept[key], changed = [*stamp, digest], True
            digests.append(digest)
        if changed:
            _write_kept(kept)
        return digests


def _sha256(file: Path) -> str:
    digest = hashlib.sha256()
    with file.open("rb") as stream:
        while chunk := stream.read(HASH_CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def _read_kept() -> dict[str, list[object]]:
    try:
        data = json.loads(fingerprints_path().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}  # none yet, or damaged: the digests are made again
    return data if isinstance(data, dict) else {}


def _write_kept(kept: dict[str, list[object]]) -> None:
    with contextlib.suppress(OSError):  # only time is lost: the digests are made again next time
        fingerprints_path().parent.mkdir(parents=True, exist_ok=True)
        write_atomically(fingerprints_path(), json.dumps(kept))
