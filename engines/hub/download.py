"""Fetching a model from the Hugging Face hub or ModelScope, through their own clients, into their own caches.

Only the files a family needs are fetched (``choose_files``): one weight format (safetensors before ``.bin``),
a sharded model's shards and index, the config, tokenizer and chat-template files; never training checkpoints
or other formats. An RWKV repository of several ``.pth`` checkpoints needs the one to fetch named, and a
repository of GGUF files the quantization (``--quant q4_k_m``: that quantization's file, or a split model's parts).

``plan_pull`` lists the repository and checks the disk; ``pull`` downloads, reporting ``PullProgress`` to a
callback and stopping when a ``threading.Event`` is set, so the CLI and a thread worker of the app drive it
the same way. An interrupted pull resumes. Within one pull both clients ask for the rest of a file whose
connection dropped with a ``Range`` request. Across processes (a pull stopped, killed or crashed, then run
again) only ModelScope's client continues a file part-way: it keeps ``FILE.incomplete`` beside the snapshot
and asks for the rest. huggingface_hub 2.4 cannot: ``file_download._download_to_tmp_and_move`` writes each
file to a temporary name unique to the process (``<etag>.<8 hex>.incomplete``, deleted in its ``finally``
when the download fails) and always calls ``http_get`` with ``resume_size=0``, so the next pull fetches an
unfinished file from its first byte; files already finished are kept by both.

The endpoints are the clients' own settings: ``HF_ENDPOINT`` (a mirror such as https://hf-mirror.com), and
ModelScope's ``MODELSCOPE_ENDPOINT`` (or its older ``MODELSCOPE_DOMAIN``), read by zhbench at each pull and
handed to the client with the cache folder: ModelScope's client otherwise reads both once per process.
"""

from __future__ import annotations

import contextlib
import fnmatch
import os
import shutil
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

from zhbench.engines.errors import ZhbenchError
from zhbench.engines.hub.caches import huggingface_cache_dir, modelscope_download_dir
from zhbench.engines.hub.gguf_repos import quant_name, quantizations

Hub = Literal["hf", "modelscope"]

#: what the clients write beside the files (lock files, refs, metadata) and what the system needs to keep
#: working: a pull that would leave less than this free is refused
DISK_RESERVE_BYTES = 100 * 2**20
#: how often progress is reported at most (the app redraws a row per report)
PROGRESS_INTERVAL_S = 0.1
#: files downloaded at once: a mirror often caps each connection, and a sharded model has several big files
DOWNLOAD_WORKERS = 4
#: where ModelScope's client goes when no endpoint is set (modelscope-hub's ``DEFAULT_ENDPOINT``)
MODELSCOPE_DEFAULT_ENDPOINT = "https://modelscope.cn"
#: what ModelScope's client adds to a file's name while it is still coming (modelscope-hub's ``_incomplete_path``)
MODELSCOPE_PARTIAL_SUFFIX = ".incomplete"

#: files a training run leaves beside the weights (transformers' Trainer checkpoints, DeepSpeed): never fetched
TRAINING_FILES = (
    "optimizer*", "scheduler*", "rng_state*", "trainer_state.json", "training_args.bin", "global_step*",
    "*.ckpt", "latest",
)  # fmt: skip
#: the small files a family reads beside its weights: configs, tokenizers, chat templates
SUPPORT_SUFFIXES = (".json", ".txt", ".model", ".jinja", ".tiktoken")
SAFETENSORS_INDEX = "model.safetensors.index.json"
PICKLE_INDEX = "pytorch_model.bin.index.json"


class DownloadError(ZhbenchError):
    """A pull that cannot start or did not finish; one line naming the repository and what to do."""


class DownloadCancelled(DownloadError):
    """The pull was stopped on request; what came is kept and the next pull resumes from it."""


@dataclass(frozen=True)
class RemoteFile:
    name: str  # path in the repository
    size: int | None  # bytes; None when the hub did not say


@dataclass(frozen=True)
class FileChoice:
    """The files to fetch and, for the person, those left out."""

    files: tuple[RemoteFile, ...]
    skipped: tuple[str, ...]


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


@dataclass(frozen=True)
class PullProgress:
    """One progress report: bytes on disk of all the files (resumed bytes counted), speed and time left."""

    file: str  # the file that moved last
    done_bytes: int
    total_bytes: int
    bytes_per_s: float | None  # over this pull's own transfer; None before there is any
    eta_s: float | None
    finished: bool = False


ProgressCallback = Callable[[PullProgress], None]


# --- choosing the files -------------------------------------------------------------------------------


def _matches(name: str, patterns: Iterable[str]) -> bool:
    return any(fnmatch.fnmatch(name, pattern) for pattern in patterns)


def choose_files(
    files: Iterable[RemoteFile], pick: str | None = None, quant: str | None = None, preferred: str | None = None
) -> FileChoice:
    """The files a family needs out of a repository's listing.

    Top-level files only (families read nothing in subfolders), but for a GGUF repository's. Weights: ``pick``
    (a glob or an exact name) when given; else the GGUF file(s) of the quantization ``quant`` (a split model's
    every part); else the safetensors (shards with their index), else ``pytorch_model*.bin`` (with its index),
    else a GGUF repository's quantization ``preferred`` (the config's) where it offers it, else the only
    ``.pth`` checkpoint. Beside them the small config, tokenizer and template files.
    Raises a ``DownloadError`` listing the checkpoints when several ``.pth`` files leave the choice open, and a
    ``QuantizationNeeded`` listing the quantizations when a GGUF repository's is not chosen.
    """
    listed = {f.name: f for f in files}
    top = [f for name, f in listed.items() if "/" not in name and not _matches(name, TRAINING_FILES)]
    names = [f.name for f in top]
    offered = quantizations(listed)
    if pick is not None:
        weights = [n for n in names if n == pick or fnmatch.fnmatch(n, pick)]
        if not weights:
            raise DownloadError(f"--file {pick!r} matches no file of the repository ({_listing(top)})")
    elif quant is not None:
        weights = _quantization_files(listed, offered, quant)
    elif safetensors := [n for n in names if n.endswith(".safetensors")]:
        weights = safetensors + [n for n in names if n == SAFETENSORS_INDEX]
    elif pickles := [n for n in names if n.startswith("pytorch_model") and n.endswith(".bin")]:
        weights = pickles + [n for n in names if n == PICKLE_INDEX]
    elif offered and preferred is not None and quant_name(preferred) in offered:
        weights = offered[quant_name(preferred)]
    elif offered:
        raise QuantizationNeeded({q: _sum_sizes(listed[n] for n in parts) for q, parts in offered.items()})
    else:
        checkpoints = [f for f in top if f.name.endswith(".pth")]
        if len(checkpoints) > 1:
            raise DownloadError(
                f"the repository holds {len(checkpoints)} checkpoints; choose one with --file NAME: "
                + _listing(checkpoints)
            )
        weights = [f.name for f in checkpoints]
    other_weights = (PICKLE_INDEX, SAFETENSORS_INDEX)  # an index belongs to the format chosen above
    support = [n for n in names if n.endswith(SUPPORT_SUFFIXES) and n not in weights and n not in other_weights]
    chosen = [listed[n] for n in dict.fromkeys(weights + support)]
    skipped = tuple(name for name in listed if name not in {f.name for f in chosen})
    return FileChoice(tuple(chosen), skipped)


def _quantization_files(listed: Mapping[str, RemoteFile], offered: Mapping[str, list[str]], quant: str) -> list[str]:
    """The files of the quantization ``quant`` (any case: ``q4_k_m``), or a ``DownloadError`` saying what is offered."""
    if not offered:
        raise DownloadError(f"--quant {quant}: the repository holds no GGUF files of a quantization")
    wanted = quant_name(quant)
    if wanted not in offered:
        sizes = {q: _sum_sizes(listed[n] for n in parts) for q, parts in offered.items()}
        raise DownloadError(f"--quant {quant}: not offered; the repository offers {_offers(sizes)}")
    return offered[wanted]


class QuantizationNeeded(DownloadError):
    """A repository of GGUF files whose quantization was not chosen; ``offers``: each one's bytes."""

    def __init__(self, offers: Mapping[str, int | None]) -> None:
        self.offers = dict(offers)
        count = len(offers)
        super().__init__(f"the repository offers {count} quantizations; choose one with --quant: {_offers(offers)}")


def _offers(sizes: Mapping[str, int | None]) -> str:
    return ", ".join(f"{quant} ({format_size(size)})" for quant, size in sizes.items())


def _sum_sizes(files: Iterable[RemoteFile]) -> int | None:
    sizes = [f.size for f in files]
    return None if None in sizes else sum(size or 0 for size in sizes)


def _listing(files: Iterable[RemoteFile]) -> str:
    return ", ".join(f"{f.name} ({format_size(f.size)})" for f in files)


def format_size(count: int | None) -> str:
    """A size in an engine's message, in decimal units as disks are sold (the engines cannot reach the
    session's formatter, which is for the screen)."""
    if count is None:
        return "size unknown"
    return f"{count / 1e9:.2f} GB" if count >= 10**9 else f"{count / 1e6:.1f} MB"


# --- planning -----------------------------------------------------------------------------------------


def huggingface_endpoint() -> str:
    """The hub the Hugging Face client talks to: ``HF_ENDPOINT`` when set (a mirror), read at each call."""
    return os.environ.get("HF_ENDPOINT", "https://huggingface.co").rstrip("/")


def modelscope_endpoint() -> str:
    """ModelScope's endpoint as its client reads it (``MODELSCOPE_ENDPOINT``, else ``MODELSCOPE_DOMAIN``, else
    its default), read at each call."""
    setting = os.environ.get("MODELSCOPE_ENDPOINT") or os.environ.get("MODELSCOPE_DOMAIN", "").strip()
    endpoint = setting or MODELSCOPE_DEFAULT_ENDPOINT
    return (endpoint if "://" in endpoint else f"https://{endpoint}").rstrip("/")


def plan_pull(
    repo_id: str,
    *,
    hub: Hub = "hf",
    revision: str | None = None,
    pick: str | None = None,
    quant: str | None = None,
    preferred_quant: str | None = None,
) -> PullPlan:
    """List ``repo_id`` on its hub, choose the files to fetch (of a GGUF repository: those of ``quant``, else of
    ``preferred_quant`` where it offers that) and check that they fit on the disk.

    Raises a ``DownloadError`` with one line: no such repository, the hub cannot be reached, a checkpoint
    or a quantization to choose (``QuantizationNeeded``), or not enough free disk space.
    """
    if repo_id.count("/") != 1 or repo_id.startswith("/"):
        raise DownloadError(f"{repo_id!r} is not a hub id (expected OWNER/NAME)")
    if hub == "hf":
        commit, files = _huggingface_listing(repo_id, revision or "main")
        cache_dir = huggingface_cache_dir()
        endpoint = huggingface_endpoint()
    else:
        commit, files = None, _modelscope_listing(repo_id, revision)
        cache_dir = modelscope_download_dir()
        endpoint = modelscope_endpoint()
    choice = choose_files(files, pick, quant, preferred_quant)
    plan = PullPlan(
        hub=hub,
        repo_id=repo_id,
        revision=revision or ("main" if hub == "hf" else "master"),
        commit=commit,
        files=choice.files,
        skipped=choice.skipped,
        cache_dir=cache_dir,
        endpoint=endpoint,
    )
    if hub == "hf" and commit is not None:
        from huggingface_hub.file_download import repo_folder_name

        snapshot = cache_dir / repo_folder_name(repo_id=repo_id, repo_type="model") / "snapshots" / commit
        plan = replace(plan, cached_bytes=_cached_bytes(plan, snapshot))
    elif hub == "modelscope":
        plan = replace(plan, cached_bytes=_cached_bytes(plan, _modelscope_snapshot(plan), MODELSCOPE_PARTIAL_SUFFIX))
    check_disk(plan)
    return plan


def _modelscope_snapshot(plan: PullPlan) -> Path:
    """The folder ModelScope's client downloads the plan into: ``models/OWNER--NAME/snapshots/REVISION`` of
    its cache. (Where a client up to 1.37 left a copy of the model, it adds to that copy instead; zhbench then
    counts nothing as cached, and the disk check asks room for all of it.)"""
    return plan.cache_dir / "models" / plan.repo_id.replace("/", "--") / "snapshots" / plan.revision


def _cached_bytes(plan: PullPlan, snapshot: Path, partial_suffix: str | None = None) -> int:
    """Bytes of the plan's files in ``snapshot``: the complete ones, and (``partial_suffix``) the part of an
    unfinished one that the client continues."""
    cached = 0
    for file in plan.files:
        if (snapshot / file.name).is_file():
            cached += file.size or 0
        elif partial_suffix is not None:
            cached += _partial_bytes(snapshot / (file.name + partial_suffix), file.size)
    return cached


def _partial_bytes(partial: Path, size: int | None) -> int:
    """The bytes of a client's unfinished file that a download continues from (none when it is longer than
    the file, which the client then starts again)."""
    try:
        count = partial.stat().st_size
    except OSError:
        return 0
    return count if size is None or count <= size else 0


def free_disk_bytes(folder: Path) -> int:
    """Free bytes on the disk that holds ``folder`` (or would, once made)."""
    for candidate in (folder, *folder.parents):
        if candidate.exists():
            return shutil.disk_usage(candidate).free
    return shutil.disk_usage(Path.cwd()).free


def check_disk(plan: PullPlan) -> None:
    """Refuse a pull whose files would not fit on the cache's disk, saying both sizes."""
    free = free_disk_bytes(plan.cache_dir)
    if plan.missing_bytes + DISK_RESERVE_BYTES > free:
        raise DownloadError(
            f"{plan.repo_id}: {format_size(plan.missing_bytes)} to download but only {format_size(free)} free "
            f"in {plan.cache_dir} (and {format_size(DISK_RESERVE_BYTES)} is kept free); free some space "
            "(`zhbench rm ID`) or point the cache elsewhere"
            + (" (HF_HUB_CACHE)" if plan.hub == "hf" else " (MODELSCOPE_CACHE)")
        )


def _huggingface_listing(repo_id: str, revision: str) -> tuple[str | None, list[RemoteFile]]:
    from huggingface_hub import HfApi

    with _hub_errors(repo_id, "hf", huggingface_endpoint()):
        info = HfApi(endpoint=huggingface_endpoint()).model_info(repo_id, revision=revision, files_metadata=True)
    files = [RemoteFile(s.rfilename, s.size) for s in info.siblings or []]
    return info.sha, files


def _modelscope_listing(repo_id: str, revision: str | None) -> list[RemoteFile]:
    """The repository's files; the listing also holds its folders (``tree`` entries), which are left out."""
    from modelscope.hub.api import HubApi

    endpoint = modelscope_endpoint()
    with _hub_errors(repo_id, "modelscope", endpoint):
        # `list_repo_files` is modelscope-hub's, reached through the shim's documented proxy: the shim's own
        # `get_model_files` drops each entry's type
        listed = HubApi(endpoint=endpoint).list_repo_files(repo_id, "model", revision=revision, recursive=True)
    return [RemoteFile(item.path, item.size) for item in listed if not item.is_dir]


# --- downloading --------------------------------------------------------------------------------------


class _Tracker:
    """Adds up the bytes of every file of a pull (from the clients' per-file progress, in several threads)
    and reports them, at most every ``PROGRESS_INTERVAL_S``; raises ``DownloadCancelled`` once ``cancel`` is set.
    """

    def __init__(self, plan: PullPlan, on_progress: ProgressCallback | None, cancel: threading.Event) -> None:
        self.total = plan.total_bytes
        self.on_progress = on_progress
        self.cancel = cancel
        self.lock = threading.Lock()
        self.done: dict[str, int] = {}  # bytes on disk per file, resumed bytes included
        self.received = 0  # bytes this pull itself transferred
        self.started = time.monotonic()
        self.reported_at = float("-inf")

    def check(self) -> None:
        if self.cancel.is_set():
            raise DownloadCancelled("download stopped; run the same pull again to resume where it stopped")

    def start(self, name: str, initial: int) -> None:
        self.check()
        with self.lock:
            self.done[name] = initial
        self.report(name)

    def add(self, name: str, count: int) -> None:
        """``count`` more bytes of ``name`` came (fewer, when the client starts a file again: the bytes it
        drops still came over the network, so the speed keeps them)."""
        self.check()
        with self.lock:
            self.done[name] = self.done.get(name, 0) + count
            self.received += max(count, 0)
        self.report(name)

    def finish_file(self, name: str, size: int | None) -> None:
        if size is not None:
            with self.lock:
                self.done[name] = size
        self.report(name, force=True)

    def finish(self, files: Sequence[RemoteFile]) -> None:
        """Report the pull done: every file complete, those the client found in its cache too."""
        with self.lock:
            self.done.update((file.name, file.size) for file in files if file.size is not None)
        self.report(files[-1].name if files else "", force=True, finished=True)

    def report(self, name: str, *, force: bool = False, finished: bool = False) -> None:
        if self.on_progress is None:
            return
        now = time.monotonic()
        with self.lock:
            if not force and now - self.reported_at < PROGRESS_INTERVAL_S:
                return
            self.reported_at = now
            done = sum(self.done.values())
            elapsed = now - self.started
            speed = self.received / elapsed if self.received and elapsed > 0 else None
        eta = max(self.total - done, 0) / speed if speed else None
        self.on_progress(PullProgress(name, done, self.total, speed, eta, finished))


def _tqdm_for(tracker: _Tracker, name: str) -> type[Any]:
    """A tqdm class that feeds ``tracker`` for the file ``name`` and draws nothing; huggingface_hub creates
    it per file (``tqdm_class``) with the file's size and the bytes a resume starts from."""
    from tqdm.auto import tqdm

    class TrackedBar(tqdm):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            kwargs["disable"] = True
            kwargs.pop("name", None)
            super().__init__(*args, **kwargs)
            tracker.start(name, int(kwargs.get("initial") or 0))

        def update(self, n: float | None = 1) -> bool | None:
            tracker.add(name, int(n or 0))
            return None

    return TrackedBar


def pull(
    plan: PullPlan,
    *,
    on_progress: ProgressCallback | None = None,
    cancel: threading.Event | None = None,
) -> Path:
    """Download the plan's files into the hub's cache and return the model's local folder.

    ``on_progress`` is called from the download threads (at most every ``PROGRESS_INTERVAL_S``, and once at
    the end with ``finished``); setting ``cancel`` stops the pull with ``DownloadCancelled`` soon after,
    keeping what came. Other failures are a ``DownloadError`` of one line.
    """
    tracker = _Tracker(plan, on_progress, cancel or threading.Event())
    tracker.check()
    folder = _pull_huggingface(plan, tracker) if plan.hub == "hf" else _pull_modelscope(plan, tracker)
    tracker.finish(plan.files)
    return folder


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


def _pull_huggingface(plan: PullPlan, tracker: _Tracker) -> Path:
    from huggingface_hub import hf_hub_download

    remove_orphaned_partials(plan.cache_dir, plan.repo_id)

    def fetch(file: RemoteFile) -> Path:
        tracker.check()
        # The revision as asked, not the commit: the client then records refs/REVISION in the cache, which is
        # how it (and zhbench) finds the snapshot later; the snapshot's commit is checked below.
        local = hf_hub_download(
            plan.repo_id,
            file.name,
            revision=plan.revision,
            cache_dir=plan.cache_dir,
            endpoint=plan.endpoint,
            tqdm_class=_tqdm_for(tracker, file.name),
        )
        tracker.finish_file(file.name, file.size)
        return Path(local)

    with _hub_errors(plan.repo_id, "hf", plan.endpoint):
        paths = _run_all(fetch, plan.files, tracker)
    snapshots = {path.parent for path in paths}  # every file chosen is top-level
    if len(snapshots) > 1 or (plan.commit and paths and paths[0].parent.name != plan.commit):
        raise DownloadError(
            f"{plan.repo_id}: the repository changed on the hub during the download; run the pull again"
        )
    return paths[0].parent if paths else plan.cache_dir


class _ClientStop(BaseException):
    """A ``DownloadCancelled`` carried through ModelScope's client, which retries a file after any ``Exception``
    its progress callback raises; a ``BaseException`` ends the whole download at once (as Ctrl+C would)."""

    def __init__(self, cancelled: DownloadCancelled) -> None:
        super().__init__(str(cancelled))
        self.cancelled = cancelled


def _pull_modelscope(plan: PullPlan, tracker: _Tracker) -> Path:
    from modelscope.hub.callback import ProgressCallback as ModelScopeCallback
    from modelscope.hub.snapshot_download import snapshot_download

    snapshot = _modelscope_snapshot(plan)
    sizes = {f.name: f.size for f in plan.files}

    class TrackedCallback(ModelScopeCallback):
        """ModelScope's per-file progress hook, created by its client with the file's name and size."""

        def __init__(self, filename: str, file_size: int) -> None:
            super().__init__(filename, file_size)
            # The client's first report is the unfinished file an earlier pull left, before any byte comes:
            # it counts as on the disk already, not as transferred (the speed would be too high all pull long).
            self.resumed = _partial_bytes(snapshot / (filename + MODELSCOPE_PARTIAL_SUFFIX), sizes.get(filename))
            self.relay(tracker.start, filename, self.resumed)

        def update(self, size: int) -> None:
            if self.resumed:
                resumed, self.resumed = self.resumed, 0
                if size == resumed:
                    return
                self.relay(tracker.start, self.filename, 0)  # the client dropped that file and starts it again
            self.relay(tracker.add, self.filename, size)

        def end(self) -> None:  # called when the file failed too: the bytes counted so far stand
            tracker.report(self.filename, force=True)

        @staticmethod
        def relay(step: Callable[[str, int], None], name: str, count: int) -> None:
            try:
                step(name, count)
            except DownloadCancelled as cancelled:
                raise _ClientStop(cancelled) from None

    for file in plan.files:  # the client reports nothing of a file it finds complete (after checking it)
        if (snapshot / file.name).is_file():
            tracker.finish_file(file.name, file.size)
    _quiet_modelscope()
    try:
        with _hub_errors(plan.repo_id, "modelscope", plan.endpoint):
            folder = snapshot_download(
                plan.repo_id,
                revision=plan.revision,
                cache_dir=plan.cache_dir,
                endpoint=plan.endpoint,
                allow_patterns=[f.name for f in plan.files],
                max_workers=DOWNLOAD_WORKERS,
                progress_callbacks=[TrackedCallback],
            )
    except _ClientStop as stop:
        raise stop.cancelled from None
    return Path(folder)


def _quiet_modelscope() -> None:
    """Keep ModelScope's client from drawing on stderr over zhbench's own progress: it logs every pull at
    INFO (its warnings, a retry after a dropped connection, still show) and draws a bar per file and one for
    the count with ``tqdm``, which no setting of its own turns off, so its download module's bar class is
    swapped for one that draws nothing. ``MODELSCOPE_LOG_LEVEL``, when set, is left to decide."""
    import logging

    from tqdm.auto import tqdm

    class SilentBar(tqdm):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **{**kwargs, "disable": True})

    try:
        import modelscope_hub._download as client_download  # the client's download module, not an API
    except ImportError:  # a client laid out otherwise: its bars show, the pull works the same
        pass
    else:
        client_download.tqdm = SilentBar
    if "MODELSCOPE_LOG_LEVEL" not in os.environ:
        logging.getLogger("modelscope_hub").setLevel(logging.WARNING)


def _run_all(fetch: Callable[[RemoteFile], Path], files: Iterable[RemoteFile], tracker: _Tracker) -> list[Path]:
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
            tracker.cancel.set()  # the other threads stop at their next chunk
            for future in futures:
                future.cancel()
            raise


# --- errors -------------------------------------------------------------------------------------------


@contextlib.contextmanager
def _hub_errors(repo_id: str, hub: Hub, endpoint: str) -> Iterator[None]:
    """Turn a client's exception into a ``DownloadError`` of one line naming the repository and the hub."""
    try:
        yield
    except ZhbenchError:
        raise
    except Exception as exc:
        raise DownloadError(f"{repo_id}: {describe_hub_error(exc, hub, endpoint)}") from exc


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


def describe_hub_error(exc: BaseException, hub: Hub, endpoint: str) -> str:
    """What went wrong, in one line a person can act on."""
    setting = "HF_ENDPOINT" if hub == "hf" else "MODELSCOPE_ENDPOINT"
    for cause in _causes(exc):
        kinds = {cls.__name__ for cls in type(cause).__mro__}
        status = getattr(getattr(cause, "response", None), "status_code", None)
        if "OfflineModeIsEnabled" in kinds:
            return "HF_HUB_OFFLINE is set, so nothing can be downloaded; unset it to pull"
        if "RepositoryNotFoundError" in kinds or "NotExistError" in kinds or status == 404:
            return f"no such model repository on {endpoint} (check the id; a private or gated one needs a token: " + (
                "`hf auth login`)" if hub == "hf" else "`modelscope login`)"
            )
        if "RevisionNotFoundError" in kinds:
            return f"no such revision on {endpoint} (check --revision)"
        if "GatedRepoError" in kinds or status in (401, 403):
            return f"{endpoint} refused access (a gated or private model: accept its terms and log in)"
        # httpx (huggingface_hub 1.x), httpx2 (2.x) and requests name their connection failures alike
        if kinds & {"TransportError", "ConnectionError", "RemoteProtocolError", "ChunkedEncodingError"}:
            return (
                f"the connection to {endpoint} failed ({_first_line(cause)}); check the network or {setting}, "
                "and run the pull again to resume"
            )
    return f"download from {endpoint} failed ({_first_line(exc)})"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    line = text.splitlines()[0] if text else ""
    return f"{type(exc).__name__}: {line}" if line else type(exc).__name__
