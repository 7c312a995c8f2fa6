"""Running a batch: every item of a set through every model, each answer stored the moment it is finished.

Models run one after another, each loaded once for all its items and let go before the next is loaded, so
two large local models never need memory at the same time. A local model answers one item at a time (it
already uses every core, or the GPU); a model on a server is sent ``concurrency`` requests at once, since a
server batches them. A model that cannot be loaded, or an item whose reply fails, is recorded as a failure
with its reason and the run goes on.
"""

from __future__ import annotations

import gc
import hashlib
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from functools import partial
from typing import Protocol, TypeVar

from zhbench.engines.api import ChatEngine
from zhbench.engines.errors import GenerationError, ZhbenchError
from zhbench.engines.types import GenerationParams, Message, Reply, StopReason
from zhbench.workbench.session.batch.prompts import PromptItem
from zhbench.workbench.session.batch.store import AnswerRecord, BatchStore, LoadFailureRecord
from zhbench.workbench.session.bench import is_standin
from zhbench.workbench.session.fresh_thread import in_fresh_thread
from zhbench.workbench.session.identity import model_identity
from zhbench.workbench.session.records import MessageRecord, ModelRecord, PaneModel
from zhbench.workbench.session.transcripts import now_iso

#: loads the model a name stands for (a local path or hub id, or SERVER/MODEL)
ModelLoader = Callable[[str], ChatEngine]
#: the decoding settings a loaded model is to answer with (its preset and the options on top)
SettingsFor = Callable[[ChatEngine], GenerationParams]
Job = TypeVar("Job")
Done = TypeVar("Done")


def item_seed(run_seed: int, item_id: str, repeat: int) -> int:
    """The seed of one item's answer: the same for every model, and for every rerun of the same run seed."""
    digest = hashlib.sha256(f"{run_seed}\0{item_id}\0{repeat}".encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFF_FFFF  # every engine takes a 31-bit seed


@dataclass
class ModelProgress:
    """How far one model of a run is: what a progress bar shows."""

    model: str
    #: answers the run wants of this model (items × repeats)
    total: int
    #: answers it has, earlier runs of the same folder included
    done: int
    #: answers that failed in this run (recorded, tried again by a rerun)
    failed: int = 0
    #: new tokens generated in this run, and the answers they came in
    tokens: int = 0
    answered_now: int = 0
    #: when its first item started (its loading is not what the rate and the ETA are about)
    started_at: float = field(default_factory=time.monotonic)
    #: why the model could not run at all
    problem: str | None = None

    @property
    def finished(self) -> int:
        """Answers and failures: the items that need nothing more in this run."""
        return self.done + self.failed

    def tokens_per_s(self) -> float:
        """New tokens a second since its first item started."""
        elapsed = time.monotonic() - self.started_at
        return self.tokens / elapsed if elapsed > 0 else 0.0

    def eta_s(self) -> float | None:
        """Seconds left at this run's pace so far; None before the first answer."""
        attempts = self.answered_now + self.failed
        if attempts == 0:
            return None
        per_item = (time.monotonic() - self.started_at) / attempts
        return per_item * max(self.total - self.finished, 0)


class ProgressListener(Protocol):
    """Told of each model's progress, always from the thread that called ``run_batch``."""

    def started(self, progress: ModelProgress) -> None:
        """The model is about to be loaded (or has nothing left to do)."""

    def advanced(self, progress: ModelProgress) -> None:
        """One more of its items was answered, or failed."""

    def finished(self, progress: ModelProgress) -> None:
        """It is done, or could not run (``problem``)."""


def run_batch(
    store: BatchStore,
    models: Sequence[str],
    *,
    load: ModelLoader,
    settings_for: SettingsFor,
    progress: ProgressListener,
    concurrency: int = 1,
    cancel: threading.Event | None = None,
) -> list[ModelProgress]:
    """Answer every item the store's run still lacks with each model of ``models``, in order.

    Ctrl+C (``KeyboardInterrupt``) stops the replies under way and is raised again; what was answered stays
    on disk and a rerun continues from there.
    """
    cancel = cancel or threading.Event()
    answered = store.log.answered()
    settings = store.settings
    outcome = []
    for model in models:
        pending = [
            (item, repeat)
            for item in settings.items
            for repeat in range(settings.repeat)
            if (model, item.id, repeat) not in answered
        ]
        total = len(settings.items) * settings.repeat
        state = ModelProgress(model, total=total, done=total - len(pending))
        outcome.append(state)
        progress.started(state)
        if pending:
            _run_model(store, state, pending, load, settings_for, progress, concurrency, cancel)
        progress.finished(state)
    return outcome


def _run_model(
    store: BatchStore,
    state: ModelProgress,
    pending: list[tuple[PromptItem, int]],
    load: ModelLoader,
    settings_for: SettingsFor,
    progress: ProgressListener,
    concurrency: int,
    cancel: threading.Event,
) -> None:
    """Load one model, answer its pending items, and let it go."""
    try:
        engine = load(state.model)
        params = settings_for(engine)
    except Exception as exc:  # any reason a model cannot run is the run's to record, not to die of
        state.problem = reason(exc)
        store.write(LoadFailureRecord(state.model, now_iso(), state.problem))
        return
    state.started_at = time.monotonic()
    try:
        identity = model_identity(engine)  # the run names the model as given; its records, by its one id
        named = pane_model(identity.id, engine, params, fingerprint=identity.fingerprint)
        store.write(ModelRecord(pane=state.model, time=now_iso(), model=named))
        answerer = _Answerer(engine, state.model, params, store.settings.seed, cancel, name=identity.id)
        _answer_all(answerer, pending, concurrency, store, state, progress)
        del answerer
    finally:
        del engine  # with the answerer gone, the last reference: its memory can be given back
        release_memory()


def _answer_all(
    answer: _Answerer,
    pending: list[tuple[PromptItem, int]],
    concurrency: int,
    store: BatchStore,
    state: ModelProgress,
    progress: ProgressListener,
) -> None:
    width = requests_at_once(answer.engine, concurrency)
    for record in completed(lambda job: answer(*job), pending, width, answer.cancel):
        take(record, store.write, state, progress)


def requests_at_once(engine: ChatEngine, concurrency: int) -> int:
    """How many replies to ask of ``engine`` at once: ``concurrency`` of a server's model (a server batches
    requests), one of a local one (it already uses every core, or the GPU)."""
    return concurrency if engine.describe().path is None else 1


def completed(
    work: Callable[[Job], Done], jobs: Sequence[Job], concurrency: int, cancel: threading.Event
) -> Iterator[Done]:
    """``work`` done on every job, ``concurrency`` at once, each result yielded to the calling thread as it
    finishes (so that thread alone writes the store). Leaving early (Ctrl+C, an error) sets ``cancel``: the
    replies under way stop within a chunk, the ones not started never start."""
    if concurrency <= 1:
        for job in jobs:
            yield work(job)
        return
    pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="zhbench-batch")
    try:
        futures = [pool.submit(work, job) for job in jobs]
        for future in as_completed(futures):
            yield future.result()
    except BaseException:
        cancel.set()
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


class ReplyRecord(Protocol):
    """A record of one reply: an answer, or a judgement."""

    @property
    def failed(self) -> bool: ...

    @property
    def message(self) -> MessageRecord: ...


Recorded = TypeVar("Recorded", bound=ReplyRecord)


def take(
    record: Recorded | None, write: Callable[[Recorded], None], state: ModelProgress, progress: ProgressListener
) -> None:
    """Store one finished reply's record and count it; None (stopped by the user) is neither: a rerun asks again."""
    if record is None:
        return
    write(record)
    if record.failed:
        state.failed += 1
    else:
        state.done += 1
        state.answered_now += 1
        state.tokens += int((record.message.stats or {}).get("new_tokens", 0))
    progress.advanced(state)


@dataclass(frozen=True)
class _Answerer:
    """Answers one item with one loaded model: its reply as an answer record, a failure as one too."""

    engine: ChatEngine
    model: str
    params: GenerationParams
    run_seed: int
    cancel: threading.Event
    #: the model's id (``identity.model_identity``), which its answers name
    name: str

    def __call__(self, item: PromptItem, repeat: int) -> AnswerRecord | None:
        seed = item_seed(self.run_seed, item.id, repeat)
        settings = self.params.with_overrides({"seed": seed})
        message = ask(self.engine, self.model, item.messages, settings, self.cancel, name=self.name)
        return None if message is None else AnswerRecord(item=item.id, repeat=repeat, seed=seed, message=message)


def ask(
    engine: ChatEngine,
    model: str,
    messages: Sequence[Message],
    settings: GenerationParams,
    cancel: threading.Event,
    *,
    name: str | None = None,
) -> MessageRecord | None:
    """``engine``'s reply to ``messages`` as the transcripts record it (under ``model``, the run's name for
    it, and naming it ``name``, its id, where that differs), a failure recorded with its reason; None when
    ``cancel`` stopped it (not an answer: a rerun asks again)."""
    started = now_iso()
    reply: Reply | None
    try:
        # on a thread of its own, as the app and ``ask`` answer (``fresh_thread``: 25x faster on a busy CPU)
        reply = in_fresh_thread(partial(engine.reply, list(messages), settings, cancel=cancel), cancel=cancel)
        error = reply.error
    except GenerationError as exc:
        reply = exc.partial if isinstance(exc.partial, Reply) else None
        error = reason(exc)
    except Exception as exc:  # an engine's bug on one item must not end the other items' run
        reply, error = None, reason(exc)
    if cancel.is_set() and (reply is None or reply.stats.stop_reason is StopReason.CANCELLED or error):
        return None
    return MessageRecord(
        id=uuid.uuid4().hex,
        pane=model,
        turn=sum(1 for message in messages if message["role"] == "user"),
        role="assistant",
        content=reply.text if reply else "",
        model=name or model,
        time=now_iso(),
        family=engine.family,
        params=(reply.params if reply else settings).to_dict(),
        stats=reply.stats.to_dict() if reply else None,
        partial=error is not None,
        started=started,
        error=error,
        reasoning=(reply.reasoning or None) if reply else None,
        served_model=reply.served_model if reply else None,
    )


def pane_model(name: str, engine: ChatEngine, params: GenerationParams, *, fingerprint: str | None = None) -> PaneModel:
    info = engine.describe()
    return PaneModel(
        model=name,
        fingerprint=fingerprint,
        family=info.family,
        path=info.path,
        device=info.device,
        dtype=info.dtype,
        params=params.to_dict(),
        random_weights=is_standin(info.path),
        base_url=info.details.get("base_url"),
        server_model=info.details.get("server_model"),
        quantization=info.details.get("quantization"),
        sha256=info.details.get("sha256"),
    )


def reason(exc: BaseException) -> str:
    """One line saying why: zhbench's own errors say it themselves; anything else is named by its type."""
    text = str(exc).strip() or type(exc).__name__
    return text if isinstance(exc, ZhbenchError) else f"{type(exc).__name__}: {text}"


def release_memory() -> None:
    """Give back what the last model held before the next one loads: its objects, and CUDA's cached blocks."""
    gc.collect()
    torch = sys.modules.get("torch")  # never imported for a run of server models only: nothing to free
    if torch is not None and torch.cuda.is_initialized():
        torch.cuda.empty_cache()
