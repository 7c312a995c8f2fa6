"""The Hugging Face hub, through its own client (huggingface_hub) and into its own cache.

The cache is ``HF_HUB_CACHE``, else ``HF_HOME/hub``, else ``~/.cache/huggingface/hub``, and the endpoint
``HF_ENDPOINT`` (a mirror such as https://hf-mirror.com), both read at each call, so zhbench finds what other
tools fetched and they find what it fetched.

Within one pull the client asks for the rest of a file whose connection dropped with a ``Range`` request.
Across processes (a pull stopped, killed or crashed, then run again) huggingface_hub 2.4 cannot continue a file
part-way: ``file_download._download_to_tmp_and_move`` writes each file to a temporary name unique to the
process (``<etag>.<8 hex>.incomplete``, deleted in its ``finally`` when the download fails) and always calls
``http_get`` with ``resume_size=0``, so the next pull fetches an unfinished file from its first byte; files
already finished are kept (and what a killed process left is removed: ``remove_orphaned_partials``).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from zhbench.engines.hub.hubs import (
    DOWNLOAD_WORKERS,
    DownloadError,
    FileProgress,
    Hub,
    PullPlan,
    RemoteFile,
    cached_bytes_in,
    hub_errors,
    nothing_started,
)

if TYPE_CHECKING:
    from huggingface_hub import CachedRepoInfo


class HuggingFace:
    """The Hugging Face hub (``zhbench pull --from hf``, the default)."""

    name: Hub = "hf"
    endpoint_setting = "HF_ENDPOINT"
    cache_setting = "HF_HUB_CACHE"
    login_command = "`hf auth login`"
    default_revision = "main"

    def endpoint(self) -> str:
        """``HF_ENDPOINT`` when set (a mirror), read at each call."""
        return os.environ.get("HF_ENDPOINT", "https://huggingface.co").rstrip("/")

    def cache_dir(self) -> Path:
        """The hub cache, read from the environment at each call (``HF_HUB_CACHE``, ``HF_HOME``)."""
        if "HF_HUB_CACHE" in os.environ:
            return Path(os.environ["HF_HUB_CACHE"]).expanduser()
        home = Path(os.environ.get("HF_HOME", Path.home() / ".cache" / "huggingface")).expanduser()
        return home / "hub"

    def list_files(self, repo_id: str, revision: str | None) -> tuple[str | None, list[RemoteFile]]:
        from huggingface_hub import HfApi

        endpoint = self.endpoint()
        with hub_errors(repo_id, self, endpoint, resumable=nothing_started):
            info = HfApi(endpoint=endpoint).model_info(
                repo_id, revision=revision or self.default_revision, files_metadata=True
            )
        return info.sha, [RemoteFile(s.rfilename, s.size) for s in info.siblings or []]

    def cached_bytes(self, plan: PullPlan) -> int:
        """What the snapshot of the listed commit already holds (nothing, where the hub named no commit)."""
        if plan.commit is None:
            return 0
        from huggingface_hub.file_download import repo_folder_name

        folder = repo_folder_name(repo_id=plan.repo_id, repo_type="model")
        return cached_bytes_in(plan, plan.cache_dir / folder / "snapshots" / plan.commit)

    def download(self, plan: PullPlan, progress: FileProgress) -> Path:
        from huggingface_hub import hf_hub_download

        remove_orphaned_partials(plan.cache_dir, plan.repo_id)

        def fetch(file: RemoteFile) -> Path:
            progress.check()
            # The revision as asked, not the commit: the client then records refs/REVISION in the cache, which is
            # how it (and zhbench) finds the snapshot later; the snapshot's commit is checked below.
            local = hf_hub_download(
                plan.repo_id,
                file.name,
                revision=plan.revision,
                cache_dir=plan.cache_dir,
                endpoint=plan.endpoint,
                tqdm_class=_tqdm_for(progress, file.name),
            )
            progress.finish_file(file.name, file.size)
            return Path(local)

        with hub_errors(plan.repo_id, self, plan.endpoint, resumable=lambda: True):  # listed: the download began
            paths = _run_all(fetch, plan.files, progress)
        snapshots = {path.parent for path in paths}  # every file chosen is top-level
        if len(snapshots) > 1 or (plan.commit and paths and paths[0].parent.name != plan.commit):
            raise DownloadError(
                f"{plan.repo_id}: the repository changed on the hub during the download; run the pull again"
            )
        return paths[0].parent if paths else plan.cache_dir

    def snapshot(self, repo_id: str) -> Path | None:
        from huggingface_hub import snapshot_download
        from huggingface_hub.errors import HFValidationError, IncompleteSnapshotError, LocalEntryNotFoundError

        try:
            return Path(snapshot_download(repo_id, local_files_only=True, cache_dir=self.cache_dir()))
        except IncompleteSnapshotError as exc:
            # Only part of the repository was fetched (`zhbench pull` takes only what a family needs, `hf download
            # --include` a pattern): the snapshot is still the model; whether its files suffice is the family's call.
            return Path(exc.snapshot_path)
        except (LocalEntryNotFoundError, HFValidationError, OSError):
            return None

    def cached(self) -> Iterator[tuple[str, Path]]:
        """Each model's newest snapshot."""
        for repo in self._cached_models():
            if repo.revisions:
                newest = max(repo.revisions, key=lambda r: r.last_modified)
                yield repo.repo_id, Path(newest.snapshot_path)

    def cached_copy(self, model_id: str) -> tuple[Path, Path] | None:
        repo = next((r for r in self._cached_models() if r.repo_id == model_id), None)
        if repo is None:
            return None
        root = self.cache_dir()  # huggingface_hub gives the repository's path with links resolved: not that
        return root / Path(repo.repo_path).name, root

    def _cached_models(self) -> list[CachedRepoInfo]:
        from huggingface_hub import scan_cache_dir
        from huggingface_hub.errors import CacheNotFound

        try:
            cache = scan_cache_dir(self.cache_dir())
        except (CacheNotFound, OSError):
            return []
        return [repo for repo in cache.repos if repo.repo_type == "model"]


HUGGING_FACE = HuggingFace()


def remove_orphaned_partials(cache_dir: Path, repo_id: str) -> int:
    """Delete what killed Hugging Face downloads of ``repo_id`` left in its ``blobs/`` folder, and return the
    bytes freed.

    huggingface_hub 2.4 writes each download to ``<etag>.<8 hex>.incomplete``, a name of its own process
    (``file_download._download_to_tmp_and_move``); a process killed mid-file leaves that file, and no later
    download reuses it, so every kill would leak what had come. Each one is removed while holding the lock
    the client itself takes for that blob (``.locks/<repo folder>/<etag>.lock``), so the file of a download
    running in another process is left alone.
    """
    from filelock import FileLock, Timeout
    from huggingface_hub.file_download import repo_folder_name

    folder = repo_folder_name(repo_id=repo_id, repo_type="model")
    freed = 0
    for partial in (cache_dir / folder / "blobs").glob("*.incomplete"):
        lock = cache_dir / ".locks" / folder / f"{partial.name.split('.', 1)[0]}.lock"
        try:
            lock.parent.mkdir(parents=True, exist_ok=True)
            with FileLock(lock, timeout=0):
                size = partial.stat().st_size
                partial.unlink()
        except (Timeout, OSError):  # being written by another download, or already gone
            continue
        freed += size
    return freed


def _tqdm_for(progress: FileProgress, name: str) -> type[Any]:
    """A tqdm class that feeds ``progress`` for the file ``name`` and draws nothing; huggingface_hub creates
    it per file (``tqdm_class``) with the file's size and the bytes a resume starts from."""
    from tqdm.auto import tqdm

    class TrackedBar(tqdm):  # type: ignore[type-arg]  # generic in its stubs only: tqdm[T] fails at run time
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            kwargs["disable"] = True
            kwargs.pop("name", None)
            super().__init__(*args, **kwargs)
            progress.start(name, int(kwargs.get("initial") or 0))

        def update(self, n: float | None = 1) -> bool | None:
            progress.add(name, int(n or 0))
            return None

    return TrackedBar


def _run_all(fetch: Callable[[RemoteFile], Path], files: Iterable[RemoteFile], progress: FileProgress) -> list[Path]:
    """``fetch`` each file, the biggest first, a few at once; the first failure stops the others."""
    from concurrent.futures import ThreadPoolExecutor  # 20 ms: not on `zhbench --help`'s path

    ordered = sorted(files, key=lambda f: -(f.size or 0))
    if not ordered:
        return []
    with ThreadPoolExecutor(max_workers=min(DOWNLOAD_WORKERS, len(ordered))) as pool:
        futures = [pool.submit(fetch, file) for file in ordered]
        try:
            return [future.result() for future in futures]
        except BaseException:
            progress.cancel.set()  # the other threads stop at their next chunk
            for future in futures:
                future.cancel()
            raise
