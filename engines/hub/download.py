"""Fetching a model from a hub (``sources.HUBS``: Hugging Face, ModelScope) through its own client, into its own
cache; what differs between the hubs lives in ``huggingface.py`` and ``modelscope.py``, this is the flow.

Only the files a family needs are fetched (``choose_files``): one weight format (safetensors before ``.bin``),
a sharded model's shards and index, the config, tokenizer and chat-template files; never training checkpoints
or other formats. An RWKV repository of several ``.pth`` checkpoints needs the one to fetch named, and a
repository of GGUF files the quantization (``--quant q4_k_m``: that quantization's file, or a split model's parts).

``plan_pull`` lists the repository and checks the disk; ``pull`` downloads, reporting ``PullProgress`` to a
callback and stopping when a ``threading.Event`` is set, so the CLI and a thread worker of the app drive it
the same way. An interrupted pull resumes: within one pull both clients ask for the rest of a file whose
connection dropped with a ``Range`` request; across processes files already finished are kept, and
ModelScope's client continues an unfinished file part-way (Hugging Face's starts it again: see its module).

The endpoints and caches are the clients' own settings (``HF_ENDPOINT`` and ``HF_HUB_CACHE``,
``MODELSCOPE_ENDPOINT`` and ``MODELSCOPE_CACHE``), read at each pull.
"""

from __future__ import annotations

import fnmatch
import shutil
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from functools import cached_property
from pathlib import Path

from zhbench.engines.hub.gguf_repos import quant_name, quantizations
from zhbench.engines.hub.hubs import DownloadCancelled, DownloadError, Hub, PullPlan, RemoteFile
from zhbench.engines.hub.sources import HUBS
from zhbench.plain.byte_sizes import format_bytes

#: what the clients write beside the files (lock files, refs, metadata) and what the system needs to keep
#: working: a pull that would leave less than this free is refused
DISK_RESERVE_BYTES = 100 * 2**20
#: how often progress is reported at most (the app redraws a row per report)
PROGRESS_INTERVAL_S = 0.1

#: files a training run leaves beside the weights (transformers' Trainer checkpoints, DeepSpeed): never fetched
TRAINING_FILES = (
    "optimizer*", "scheduler*", "rng_state*", "trainer_state.json", "training_args.bin", "global_step*",
    "*.ckpt", "latest",
)  # fmt: skip
#: the small files a family reads beside its weights: configs, tokenizers, chat templates
SUPPORT_SUFFIXES = (".json", ".txt", ".model", ".jinja", ".tiktoken")
SAFETENSORS_INDEX = "model.safetensors.index.json"
PICKLE_INDEX = "pytorch_model.bin.index.json"


@dataclass(frozen=True)
class FileChoice:
    """The files to fetch and, for the person, those left out."""

    files: tuple[RemoteFile, ...]
    skipped: tuple[str, ...]


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


class _Repository:
    """A repository's listing as ``choose_files`` reads it: every file, the top-level ones a family may read
    (training files left out), and its GGUF files by quantization."""

    def __init__(self, files: Iterable[RemoteFile]) -> None:
        self.listed = {f.name: f for f in files}
        self.top = [f for name, f in self.listed.items() if "/" not in name and not _matches(name, TRAINING_FILES)]
        self.names = [f.name for f in self.top]

    @cached_property
    def offered(self) -> dict[str, list[str]]:
        return quantizations(self.listed)

    def choice(self, weights: list[str]) -> FileChoice:
        """``weights`` and the small files a family reads beside them; every other file, skipped."""
        left = {*weights, PICKLE_INDEX, SAFETENSORS_INDEX}  # an index belongs to the format chosen
        chosen = dict.fromkeys(weights + [n for n in self.names if n.endswith(SUPPORT_SUFFIXES) and n not in left])
        return FileChoice(tuple(self.listed[n] for n in chosen), tuple(n for n in self.listed if n not in chosen))

    def sizes(self) -> dict[str, int | None]:
        """Each quantization's bytes."""
        return {q: _sum_sizes(self.listed[n] for n in parts) for q, parts in self.offered.items()}


def _format(pattern: str, index: str) -> Callable[[_Repository, str | None], list[str]]:
    """The weights of one format: the files of ``pattern`` and, where there is one, their shards' ``index``."""

    def weights(repository: _Repository, preferred: str | None) -> list[str]:
        found = [n for n in repository.names if fnmatch.fnmatchcase(n, pattern)]
        return found + [n for n in repository.names if n == index] if found else []

    return weights


def _gguf_quantization(repository: _Repository, preferred: str | None) -> list[str]:
    """A GGUF repository's quantization ``preferred`` (the config's) where it offers it; ``QuantizationNeeded``
    listing them where it offers others."""
    if not repository.offered:
        return []
    if preferred is not None and quant_name(preferred) in repository.offered:
        return repository.offered[quant_name(preferred)]
    raise QuantizationNeeded(repository.sizes())


def _only_checkpoint(repository: _Repository, preferred: str | None) -> list[str]:
    """The one ``.pth`` checkpoint; a ``DownloadError`` listing them where there are several to choose from."""
    checkpoints = [f for f in repository.top if f.name.endswith(".pth")]
    if len(checkpoints) > 1:
        raise DownloadError(
            f"the repository holds {len(checkpoints)} checkpoints; choose one with --file NAME: "
            + _listing(checkpoints)
        )
    return [f.name for f in checkpoints]


#: where the weights are when none is named, the first that finds any: safetensors (shards with their index),
#: else ``pytorch_model*.bin`` (with its index), else a GGUF repository's quantization, else a ``.pth`` file
DEFAULT_WEIGHTS = (
    _format("*.safetensors", SAFETENSORS_INDEX),
    _format("pytorch_model*.bin", PICKLE_INDEX),
    _gguf_quantization,
    _only_checkpoint,
)


def choose_files(
    files: Iterable[RemoteFile], pick: str | None = None, quant: str | None = None, preferred: str | None = None
) -> FileChoice:
    """The files a family needs out of a repository's listing.

    Top-level files only (families read nothing in subfolders), but for a GGUF repository's. Weights: ``pick``
    (a glob or an exact name) when given; else the GGUF file(s) of the quantization ``quant`` (a split model's
    every part); else the first of ``DEFAULT_WEIGHTS`` that finds any (of a GGUF repository, the quantization
    ``preferred`` where it offers it). Beside them the small config, tokenizer and template files.
    Raises a ``DownloadError`` listing the checkpoints when several ``.pth`` files leave the choice open, and a
    ``QuantizationNeeded`` listing the quantizations when a GGUF repository's is not chosen.
    """
    repository = _Repository(files)
    if pick is not None:
        weights = _picked(repository, pick)
    elif quant is not None:
        weights = _quantization_files(repository, quant)
    else:
        weights = next((found for rule in DEFAULT_WEIGHTS if (found := rule(repository, preferred))), [])
    return repository.choice(weights)


def _picked(repository: _Repository, pick: str) -> list[str]:
    """The files ``--file`` names (a glob or an exact name), or a ``DownloadError`` listing the repository."""
    weights = [n for n in repository.names if n == pick or fnmatch.fnmatch(n, pick)]
    if not weights:
        raise DownloadError(f"--file {pick!r} matches no file of the repository ({_listing(repository.top)})")
    return weights


def _quantization_files(repository: _Repository, quant: str) -> list[str]:
    """The files of the quantization ``quant`` (any case: ``q4_k_m``), or a ``DownloadError`` saying what is offered."""
    if not repository.offered:
        raise DownloadError(f"--quant {quant}: the repository holds no GGUF files of a quantization")
    wanted = quant_name(quant)
    if wanted not in repository.offered:
        raise DownloadError(f"--quant {quant}: not offered; the repository offers {_offers(repository.sizes())}")
    return repository.offered[wanted]


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
    """A size in a pull's message, in the units of every other size zhbench shows (its progress, the model
    list, ``zhbench models``)."""
    return format_bytes(count, unknown="size unknown")


# --- planning -----------------------------------------------------------------------------------------


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
    source = HUBS[hub]
    commit, files = source.list_files(repo_id, revision)
    choice = choose_files(files, pick, quant, preferred_quant)
    plan = PullPlan(
        hub=hub,
        repo_id=repo_id,
        revision=revision or source.default_revision,
        commit=commit,
        files=choice.files,
        skipped=choice.skipped,
        cache_dir=source.cache_dir(),
        endpoint=source.endpoint(),
    )
    plan = replace(plan, cached_bytes=source.cached_bytes(plan))
    check_disk(plan)
    return plan


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
            f"(`zhbench rm ID`) or point the cache elsewhere ({HUBS[plan.hub].cache_setting})"
        )


# --- downloading --------------------------------------------------------------------------------------


class _Tracker:
    """Adds up the bytes of every file of a pull (from the clients' per-file progress, in several threads)
    and reports them, at most every ``PROGRESS_INTERVAL_S``; raises ``DownloadCancelled`` once ``cancel`` is set.
    A hub's download reports to it as its ``FileProgress``.
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
    folder = HUBS[plan.hub].download(plan, tracker)
    tracker.finish(plan.files)
    return folder
