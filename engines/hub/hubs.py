"""What every hub offers zhbench, and what the hubs share: a hub (``huggingface.py``, ``modelscope.py``) lists a
repository's files, downloads a plan of them into its own cache through its own client, finds what that cache
holds, and says what its settings are called. ``download.py`` drives a pull the same way for each, and
discovery, ``resolve_model`` and ``zhbench rm`` ask each hub of ``sources.HUBS`` in turn.
"""

from __future__ import annotations

import contextlib
import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

from zhbench.engines.errors import ZhbenchError

#: a hub as the command line and the catalog name it
Hub = Literal["hf", "modelscope"]
#: files downloaded at once: a mirror often caps each connection, and a sharded model has several big files
DOWNLOAD_WORKERS = 4


class DownloadError(ZhbenchError):
    """A pull that cannot start or did not finish; one line naming the repository and what to do."""


class DownloadCancelled(DownloadError):
    """The pull was stopped on request; what came is kept and the next pull resumes from it."""


class NotAModelIdError(ZhbenchError):
    """What was given where a hub id belongs is not one (a path, ``..``, too long, odd characters)."""


@dataclass(frozen=True)
class RemoteFile:
    name: str  # path in the repository
    size: int | None  # bytes; None when the hub did not say


@dataclass(frozen=True)
class PullPlan:
    """What a pull will fetch, from where, and how much of it is still to come."""

    hub: Hub
    repo_id: str
    revision: str  # as asked (a branch, a tag or a commit)
    commit: str | None  # the commit the listing came from (Hugging Face), to pin every file to it
    files: tuple[RemoteFile, ...]
    skipped: tuple[str, ...]
    cache_dir: Path  # the client's cache, where the files go
    endpoint: str
    #: bytes of ``files`` already in the cache: the files an earlier pull finished and, with ModelScope, the
    #: part of a file it left unfinished, which this pull continues
    cached_bytes: int = 0

    @property
    def total_bytes(self) -> int:
        return sum(f.size or 0 for f in self.files)

    @property
    def missing_bytes(self) -> int:
        return self.total_bytes - self.cached_bytes


class FileProgress(Protocol):
    """Where a hub's download reports each file's bytes (from its client's threads); every call raises
    ``DownloadCancelled`` once ``cancel`` is set."""

    cancel: threading.Event

    def check(self) -> None: ...

    def start(self, name: str, initial: int) -> None:
        """``name`` begins, with ``initial`` bytes of it on the disk already (a resumed file)."""

    def add(self, name: str, count: int) -> None:
        """``count`` more bytes of ``name`` came (fewer: the client starts the file again)."""

    def finish_file(self, name: str, size: int | None) -> None: ...

    def report(self, name: str, *, force: bool = False, finished: bool = False) -> None: ...


class ModelHub(Protocol):
    """One hub: its settings' names, its repositories' listing, a download through its own client into its own
    cache, and what that cache holds. Heavy clients are imported inside the methods that use them."""

    name: Hub
    #: the environment settings that point its client at a mirror and at another cache
    endpoint_setting: str
    cache_setting: str
    #: how a person logs in to it, for a private or gated repository
    login_command: str
    #: the revision a pull takes when none is asked
    default_revision: str

    def endpoint(self) -> str:
        """The server its client talks to, read from the environment at each call."""

    def cache_dir(self) -> Path:
        """Where its client puts downloads, read from the environment at each call."""

    def list_files(self, repo_id: str, revision: str | None) -> tuple[str | None, list[RemoteFile]]:
        """The repository's files at ``revision`` (None: its default), and the commit they are of where the hub
        says; a ``DownloadError`` of one line when it cannot be listed."""

    def cached_bytes(self, plan: PullPlan) -> int:
        """The bytes of the plan's files already in the cache (what the download will not fetch again)."""

    def download(self, plan: PullPlan, progress: FileProgress) -> Path:
        """Fetch the plan's files into the cache and return the model's local folder."""

    def snapshot(self, repo_id: str) -> Path | None:
        """The cached folder of ``repo_id``, or None; nothing is downloaded."""

    def cached(self) -> Iterator[tuple[str, Path]]:
        """``(id, folder)`` of every model in the cache."""

    def cached_copy(self, model_id: str) -> tuple[Path, Path] | None:
        """``model_id``'s folder in the cache (every revision of it) and the cache root it is one model of."""


#: a hub id's owner or name, as huggingface_hub's ``validate_repo_id`` takes them
_ID_PART = re.compile(r"\w(?:[\w.-]*\w)?")


def check_model_id(model_id: str) -> None:
    """Refuse with ``NotAModelIdError`` anything but ``OWNER/NAME`` (or a bare ``NAME``, as Hugging Face
    allows): no ``..``, no absolute path, no ``--`` (the caches' own separator), at most 96 characters."""
    parts = model_id.split("/")
    problem = None
    if len(model_id) > 96:
        problem = f"{len(model_id)} characters long (a hub id has at most 96)"
    elif len(parts) > 2 or (len(parts) == 2 and "" in parts):
        problem = "a hub id is OWNER/NAME, not a path"
    elif not all(_ID_PART.fullmatch(part) for part in parts) or "--" in model_id or ".." in model_id:
        problem = "a hub id is OWNER/NAME of letters, digits, '-', '_' and '.', not starting or ending with '-' or '.'"
    if problem is not None:
        raise NotAModelIdError(f"not a hub id: {problem}")


def cached_bytes_in(plan: PullPlan, snapshot: Path, partial_suffix: str | None = None) -> int:
    """Bytes of the plan's files in ``snapshot``: the complete ones, and (``partial_suffix``) the part of an
    unfinished one that the client continues."""
    cached = 0
    for file in plan.files:
        if (snapshot / file.name).is_file():
            cached += file.size or 0
        elif partial_suffix is not None:
            cached += partial_bytes(snapshot / (file.name + partial_suffix), file.size)
    return cached


def partial_bytes(partial: Path, size: int | None) -> int:
    """The bytes of a client's unfinished file that a download continues from (none when it is longer than
    the file, which the client then starts again)."""
    try:
        count = partial.stat().st_size
    except OSError:
        return 0
    return count if size is None or count <= size else 0


# --- errors -------------------------------------------------------------------------------------------


@contextlib.contextmanager
def hub_errors(repo_id: str, hub: ModelHub, endpoint: str, *, resumable: Callable[[], bool]) -> Iterator[None]:
    """Turn a client's exception into a ``DownloadError`` of one line naming the repository and the hub;
    ``resumable`` says, after a failure, whether a pull run again would resume (bytes came)."""
    try:
        yield
    except ZhbenchError:
        raise
    except Exception as exc:
        raise DownloadError(f"{repo_id}: {describe_hub_error(exc, hub, endpoint, resumable())}") from exc


def nothing_started() -> bool:
    """``hub_errors``'s ``resumable`` for a call before any download (a listing)."""
    return False


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and what led to it: its causes, and the failure of each file of a ModelScope download
    (``FileDownloadError.failed_files``: the client tries every file and then raises one error for all)."""
    seen: set[int] = set()
    pending: list[BaseException] = [exc]
    while pending:
        current = pending.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        following = [current.__cause__ or current.__context__]
        following += list(getattr(current, "failed_files", {}).values())
        pending[:0] = [cause for cause in following if cause is not None]


def describe_hub_error(exc: BaseException, hub: ModelHub, endpoint: str, resumable: bool = False) -> str:
    """What went wrong, in one line a person can act on; ``resumable``: bytes came, a pull again resumes."""
    for cause in _causes(exc):
        kinds = {cls.__name__ for cls in type(cause).__mro__}
        status = getattr(getattr(cause, "response", None), "status_code", None)
        if "OfflineModeIsEnabled" in kinds:
            return "HF_HUB_OFFLINE is set, so nothing can be downloaded; unset it to pull"
        if "RepositoryNotFoundError" in kinds or "NotExistError" in kinds or status == 404:
            return (
                f"no such model repository on {endpoint} (check the id; a private or gated one needs a token: "
                f"{hub.login_command})"
            )
        if "RevisionNotFoundError" in kinds:
            return f"no such revision on {endpoint} (check --revision)"
        if "GatedRepoError" in kinds or status in (401, 403):
            return f"{endpoint} refused access (a gated or private model: accept its terms and log in)"
        # httpx (huggingface_hub 1.x), httpx2 (2.x) and requests name their connection failures alike
        if kinds & {"TransportError", "ConnectionError", "RemoteProtocolError", "ChunkedEncodingError"}:
            resume = ", and run the pull again to resume" if resumable else ""
            return (
                f"the connection to {endpoint} failed ({_first_line(_system_error(cause) or cause)}); check the "
                f"network or {hub.endpoint_setting}{resume}"
            )
    return f"download from {endpoint} failed ({_first_line(exc)})"


def _system_error(exc: BaseException) -> OSError | None:
    """The system's own error deepest under ``exc`` (``ConnectionRefusedError: [Errno 111] ...``), where one
    is: a client's wrappers of it (requests' ``Max retries exceeded with url``) say nothing more."""
    found = [cause for cause in _causes(exc) if isinstance(cause, OSError) and cause.errno is not None]
    return found[-1] if found else None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    line = text.splitlines()[0] if text else ""
    return f"{type(exc).__name__}: {line}" if line else type(exc).__name__
