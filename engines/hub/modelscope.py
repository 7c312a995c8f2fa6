"""ModelScope, through its own client (modelscope, with modelscope-hub underneath) and into its own cache.

The current client caches a model as ``models/OWNER--NAME/snapshots/REVISION`` under ``MODELSCOPE_CACHE``
(else ``~/.cache/modelscope``); clients up to 1.37 kept ``models/OWNER/NAME`` (dots in the name written
``___``), older ones ``OWNER/NAME``, under ``MODELSCOPE_CACHE`` (else ``~/.cache/modelscope/hub``): all are
found. The endpoint is ``MODELSCOPE_ENDPOINT`` (or its older ``MODELSCOPE_DOMAIN``), read by zhbench at each
pull and handed to the client with the cache folder: the client otherwise reads both once per process.

An interrupted pull resumes part-way through a file, across processes too: the client keeps
``FILE.incomplete`` beside the snapshot and asks for the rest with a ``Range`` request.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from zhbench.engines.hub.hubs import (
    DOWNLOAD_WORKERS,
    DownloadCancelled,
    FileProgress,
    Hub,
    NotAModelIdError,
    PullPlan,
    RemoteFile,
    cached_bytes_in,
    check_model_id,
    hub_errors,
    nothing_started,
    partial_bytes,
)

#: where the client goes when no endpoint is set (modelscope-hub's ``DEFAULT_ENDPOINT``)
DEFAULT_ENDPOINT = "https://modelscope.cn"
#: what the client adds to a file's name while it is still coming (modelscope-hub's ``_incomplete_path``)
PARTIAL_SUFFIX = ".incomplete"
#: folders of the older caches that hold many models, never one: an "owner" of these names is refused
_SHARED_FOLDERS = ("models", "datasets", "hub")


def modelscope_cache_root() -> Path:
    """Where clients up to 1.37 put models (``MODELSCOPE_CACHE``, else ``~/.cache/modelscope/hub``)."""
    return Path(os.environ.get("MODELSCOPE_CACHE", Path.home() / ".cache" / "modelscope" / "hub")).expanduser()


class ModelScope:
    """ModelScope (``zhbench pull --from modelscope``)."""

    name: Hub = "modelscope"
    endpoint_setting = "MODELSCOPE_ENDPOINT"
    cache_setting = "MODELSCOPE_CACHE"
    login_command = "`modelscope login`"
    default_revision = "master"

    def endpoint(self) -> str:
        """The endpoint as the client reads it (``MODELSCOPE_ENDPOINT``, else ``MODELSCOPE_DOMAIN``, else its
        default), read at each call."""
        setting = os.environ.get("MODELSCOPE_ENDPOINT") or os.environ.get("MODELSCOPE_DOMAIN", "").strip()
        endpoint = setting or DEFAULT_ENDPOINT
        return (endpoint if "://" in endpoint else f"https://{endpoint}").rstrip("/")

    def cache_dir(self) -> Path:
        """Where the current client (modelscope-hub) caches downloads: ``MODELSCOPE_CACHE``, else
        ``~/.cache/modelscope``."""
        return Path(os.environ.get("MODELSCOPE_CACHE") or Path.home() / ".cache" / "modelscope").expanduser()

    def list_files(self, repo_id: str, revision: str | None) -> tuple[str | None, list[RemoteFile]]:
        """The repository's files; the listing also holds its folders (``tree`` entries), which are left out.
        ModelScope names no commit."""
        from modelscope.hub.api import HubApi

        endpoint = self.endpoint()
        with _quiet_logs(), hub_errors(repo_id, self, endpoint, resumable=nothing_started):
            # `list_repo_files` is modelscope-hub's, reached through the shim's documented proxy: the shim's own
            # `get_model_files` drops each entry's type
            listed = HubApi(endpoint=endpoint).list_repo_files(repo_id, "model", revision=revision, recursive=True)
        return None, [RemoteFile(item.path, item.size) for item in listed if not item.is_dir]

    def cached_bytes(self, plan: PullPlan) -> int:
        """The finished files of the plan's snapshot, and the part of an unfinished one the client continues."""
        return cached_bytes_in(plan, _snapshot_of(plan), PARTIAL_SUFFIX)

    def download(self, plan: PullPlan, progress: FileProgress) -> Path:
        from modelscope.hub.snapshot_download import snapshot_download

        snapshot = _snapshot_of(plan)
        for file in plan.files:  # the client reports nothing of a file it finds complete (after checking it)
            if (snapshot / file.name).is_file():
                progress.finish_file(file.name, file.size)
        callback = _callback_for(plan, progress)
        _quiet_client()
        try:
            with (
                _quiet_logs(),
                hub_errors(plan.repo_id, self, plan.endpoint, resumable=lambda: self.cached_bytes(plan) > 0),
            ):
                folder = snapshot_download(
                    plan.repo_id,
                    revision=plan.revision,
                    cache_dir=plan.cache_dir,
                    endpoint=plan.endpoint,
                    allow_patterns=[f.name for f in plan.files],
                    max_workers=DOWNLOAD_WORKERS,
                    progress_callbacks=[callback],
                )
        except _ClientStop as stop:
            raise stop.cancelled from None
        return Path(folder)

    def snapshot(self, repo_id: str) -> Path | None:
        found = self._copy(repo_id)
        return found[0] if found is not None else None

    def cached(self) -> Iterator[tuple[str, Path]]:
        yield from _current_copies(self.cache_dir() / "models")
        yield from _older_copies(modelscope_cache_root())

    def cached_copy(self, model_id: str) -> tuple[Path, Path] | None:
        found = self._copy(model_id)
        return (found[1], found[2]) if found is not None else None

    def _copy(self, model_id: str) -> tuple[Path, Path, Path] | None:
        """``model_id``'s snapshot in the cache, its model folder, and the cache root that folder is in; None
        when it is not there, or ``model_id`` is no ``OWNER/NAME`` hub id."""
        try:
            check_model_id(model_id)
        except NotAModelIdError:
            return None
        if model_id.count("/") != 1:
            return None
        owner, name = model_id.split("/")
        current = self.cache_dir() / "models"
        snapshot = _newest_snapshot(current / f"{owner}--{name}")
        if snapshot is not None:
            return snapshot, snapshot.parent.parent, current
        root = modelscope_cache_root()
        candidates = [root / "models" / owner / name.replace(".", "___")]
        if owner not in _SHARED_FOLDERS:  # ``root/models/OWNER`` holds every model of OWNER
            candidates.append(root / owner / name)
        for candidate in candidates:
            if candidate.is_dir() and any(candidate.iterdir()):
                return candidate, candidate, root
        return None


MODELSCOPE = ModelScope()


def _newest_snapshot(repo_folder: Path) -> Path | None:
    snapshots = [p for p in (repo_folder / "snapshots").glob("*") if p.is_dir() and any(p.iterdir())]
    return max(snapshots, key=lambda p: p.stat().st_mtime) if snapshots else None


def _current_copies(models: Path) -> Iterator[tuple[str, Path]]:
    """Each model's newest snapshot in the current client's ``models/OWNER--NAME/snapshots/REVISION``."""
    if not models.is_dir():
        return
    for repo in sorted(p for p in models.iterdir() if "--" in p.name):
        snapshot = _newest_snapshot(repo)
        if snapshot is not None:
            yield repo.name.replace("--", "/", 1), snapshot


def _older_copies(root: Path) -> Iterator[tuple[str, Path]]:
    """Each model folder of the older clients' ``models/OWNER/NAME`` (``___`` for a dot) and ``OWNER/NAME``."""
    for base, shared in ((root / "models", ()), (root, ("models", "datasets"))):
        for owner in _owners(base, shared):
            for model in sorted(p for p in owner.iterdir() if p.is_dir()):
                yield f"{owner.name}/{model.name.replace('___', '.')}", model


def _owners(base: Path, shared: tuple[str, ...]) -> list[Path]:
    """The owners' folders in ``base``, in name order: not hidden, not the current layout's ``OWNER--NAME``,
    not one of the ``shared`` folders that hold many models."""
    if not base.is_dir():
        return []
    return sorted(
        p for p in base.iterdir()
        if p.is_dir() and not p.name.startswith((".", "_")) and "--" not in p.name and p.name not in shared
    )  # fmt: skip


def _snapshot_of(plan: PullPlan) -> Path:
    """The folder the client downloads the plan into: ``models/OWNER--NAME/snapshots/REVISION`` of its cache.
    (Where a client up to 1.37 left a copy of the model, it adds to that copy instead; zhbench then counts
    nothing as cached, and the disk check asks room for all of it.)"""
    return plan.cache_dir / "models" / plan.repo_id.replace("/", "--") / "snapshots" / plan.revision


class _ClientStop(BaseException):
    """A ``DownloadCancelled`` carried through the client, which retries a file after any ``Exception`` its
    progress callback raises; a ``BaseException`` ends the whole download at once (as Ctrl+C would)."""

    def __init__(self, cancelled: DownloadCancelled) -> None:
        super().__init__(str(cancelled))
        self.cancelled = cancelled


def _callback_for(plan: PullPlan, progress: FileProgress) -> type[Any]:
    """The client's per-file progress hook, feeding ``progress``; the client creates one per file with the
    file's name and size."""
    from modelscope.hub.callback import ProgressCallback

    snapshot = _snapshot_of(plan)
    sizes = {f.name: f.size for f in plan.files}

    class TrackedCallback(ProgressCallback):
        def __init__(self, filename: str, file_size: int) -> None:
            super().__init__(filename, file_size)
            # The client's first report is the unfinished file an earlier pull left, before any byte comes:
            # it counts as on the disk already, not as transferred (the speed would be too high all pull long).
            self.resumed = partial_bytes(snapshot / (filename + PARTIAL_SUFFIX), sizes.get(filename))
            self.relay(progress.start, filename, self.resumed)

        def update(self, size: int) -> None:
            if self.resumed:
                resumed, self.resumed = self.resumed, 0
                if size == resumed:
                    return
                self.relay(progress.start, self.filename, 0)  # the client dropped that file and starts it again
            self.relay(progress.add, self.filename, size)

        def end(self) -> None:  # called when the file failed too: the bytes counted so far stand
            progress.report(self.filename, force=True)

        @staticmethod
        def relay(step: Callable[[str, int], None], name: str, count: int) -> None:
            try:
                step(name, count)
            except DownloadCancelled as cancelled:
                raise _ClientStop(cancelled) from None

    return TrackedCallback


@contextlib.contextmanager
def _quiet_logs() -> Iterator[None]:
    """The client's logger silenced for the call: it logs every pull at INFO and a warning per retry, lines
    over zhbench's progress and its one-line error (a failure is that line). ``MODELSCOPE_LOG_LEVEL``, when
    set, is left to decide."""
    import logging

    logger = logging.getLogger("modelscope_hub")
    if "MODELSCOPE_LOG_LEVEL" in os.environ:
        yield
        return
    level = logger.level
    logger.setLevel(logging.CRITICAL + 1)
    try:
        yield
    finally:
        logger.setLevel(level)


def _quiet_client() -> None:
    """Keep the client from drawing on stderr over zhbench's own progress: it draws a bar per file and one
    for the count with ``tqdm``, which no setting of its own turns off, so its download module's bar class is
    swapped for one that draws nothing."""
    from tqdm.auto import tqdm

    class SilentBar(tqdm):  # type: ignore[type-arg]  # generic in its stubs only: tqdm[T] fails at run time
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **{**kwargs, "disable": True})

    try:
        import modelscope_hub._download as client_download  # the client's download module, not an API
    except ImportError:  # a client laid out otherwise: its bars show, the pull works the same
        pass
    else:
        vars(client_download)["tqdm"] = SilentBar  # a name the module imported, not one it exports
