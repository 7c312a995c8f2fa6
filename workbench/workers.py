"""The app's thread workers and the messages they post.

Slow work (finding models, loading one, generating, reading memory) runs only here, in Textual thread
workers. A worker never touches a widget or the session's state: it posts a message, and a handler on
the UI thread changes state and the screen. torch and transformers are imported by the worker that
loads the first model, never before the first screen is painted.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from textual.message import Message
from textual.worker import get_current_worker

from zhbench.engines.api import ChatEngine, ReplyStream
from zhbench.engines.errors import GenerationError, ZhbenchError
from zhbench.engines.remote.server import RemoteServer
from zhbench.engines.types import Reply
from zhbench.plain.memory_reading import MemoryReading
from zhbench.plain.model_rows import DEMO_PREFIX, ModelRow
from zhbench.plain.redraw import FLUSH_INTERVAL_S
from zhbench.workbench.session.bench import ReplyJob
from zhbench.workbench.session.identity import ModelIdentity, model_identity
from zhbench.workbench.session.memory import NvmlReader

if TYPE_CHECKING:
    from zhbench.engines.hub.download import PullProgress
    from zhbench.engines.hub.hubs import Hub
    from zhbench.workbench.session.chat_templates import TemplateQuestion
    from zhbench.workbench.session.search import SessionRow

MEMORY_POLL_S = 1.0
#: one model loads at a time: transformers' lazy imports are not safe from two threads at once
_LOAD_LOCK = threading.Lock()

Post = Callable[[Message], bool]
#: one memory reading for the ``(pane, device, weight bytes)`` of every loaded model
MemoryReader = Callable[[Iterable[tuple[str, str, int | None]]], MemoryReading]


@dataclass
class ModelsDiscovered(Message):
    rows: list[ModelRow]
    any_local: bool
    #: registered families that could not be used (a broken plugin), one line each
    problems: tuple[str, ...] = ()


@dataclass
class LoadProgressed(Message):
    pane: str
    generation: int
    step: str


@dataclass
class ModelLoaded(Message):
    pane: str
    generation: int
    engine: ChatEngine
    demo: bool
    identity: ModelIdentity


@dataclass
class ModelLoadFailed(Message):
    pane: str
    generation: int
    reason: str
    #: a model file that loads once a chat template is named for it: what to ask
    template: TemplateQuestion | None = None


@dataclass
class ReplyChunkArrived(Message):
    pane: str
    generation: int
    piece: str
    #: new thinking of a reasoning model
    reasoning: str = ""


@dataclass
class ReplyFinished(Message):
    pane: str
    generation: int
    reply: Reply


@dataclass
class ReplyFailed(Message):
    pane: str
    generation: int
    error: str
    partial: Reply | None


@dataclass
class MemoryRead(Message):
    reading: MemoryReading


def discover_models(
    post: Post,
    model_dirs: list[Path],
    servers: Mapping[str, RemoteServer] | None = None,
    device: str | None = None,
) -> None:
    """Find the models on this machine and on the config's servers, and post them as model-list rows, each
    local one with its memory estimate and whether it fits on ``device`` (where the app loads models)."""
    from zhbench.engines.hub.discovery import local_models
    from zhbench.engines.registry import family_problems
    from zhbench.workbench.session.model_specs import list_server_models
    from zhbench.workbench.session.offer import rows_on_offer, server_problems, server_rows, with_fit

    nvml = NvmlReader()  # one NVML session for the GPU count and every row's fit
    gpus, _ = nvml.read()
    local = local_models(model_dirs)
    listings = list_server_models(servers or {})
    rows = [with_fit(row, device, nvml) for row in rows_on_offer(local, gpu=bool(gpus))]
    served = server_rows(listings)
    demos = [row for row in rows if row.source == "demo"]  # the servers' models before the demos
    problems = (*family_problems(), *server_problems(listings))
    rows = [row for row in rows if row.source != "demo"] + served + demos
    post(ModelsDiscovered(rows, any_local=bool(local or served), problems=problems))


def load_model(
    post: Post,
    pane: str,
    generation: int,
    spec: str,
    *,
    device: str | None,
    strategy: str | None,
    demo_folder: Path,
    servers: Mapping[str, RemoteServer] | None = None,
    templates: Mapping[str, str] | None = None,
) -> None:
    """Load ``spec`` (a path, a hub id, a demo row's key, or SERVER/MODEL of a configured server; a model file
    with no chat template of its own with the one ``templates`` names for it) and post the engine or why it
    failed."""
    from zhbench.engines.local.chat_render import ChatTemplateNeeded
    from zhbench.workbench.session.chat_templates import template_question
    from zhbench.workbench.session.model_specs import load_model_spec, server_model

    def step(text: str) -> None:
        post(LoadProgressed(pane, generation, text))

    try:
        if server_model(spec, servers or {}) is not None:  # nothing to import or read here: ask the server
            step("asking the server for the model")
            engine = load_model_spec(spec, servers=servers or {})
        else:
            engine = _load_local(
                spec, step, device=device, strategy=strategy, demo_folder=demo_folder, templates=templates or {}
            )
    except ChatTemplateNeeded as exc:
        post(ModelLoadFailed(pane, generation, str(exc), template_question(spec, exc)))
    except ZhbenchError as exc:
        post(ModelLoadFailed(pane, generation, str(exc)))
    except MemoryError:
        post(ModelLoadFailed(pane, generation, "out of memory while loading this model"))
    except Exception as exc:  # a failed load is shown in its pane, never fatal to the app
        reason = f"{type(exc).__name__}: {exc}"
        if "out of memory" in str(exc).lower():
            reason = f"out of memory while loading ({exc})"
        post(ModelLoadFailed(pane, generation, reason))
    else:
        # named here, off the screen's thread: the weights' fingerprint reads them whole the first time
        if engine.describe().path is not None:
            step("naming it (its weights' sha256 is read once per model)")
        identity = model_identity(engine)
        post(ModelLoaded(pane, generation, engine, demo=spec.startswith(DEMO_PREFIX), identity=identity))


def _load_local(
    spec: str,
    step: Callable[[str], None],
    *,
    device: str | None,
    strategy: str | None,
    demo_folder: Path,
    templates: Mapping[str, str],
) -> ChatEngine:
    """A model whose weights load into this process, one at a time."""
    if not _LOAD_LOCK.acquire(blocking=False):
        step("waiting for the other pane's model to finish loading")
        _LOAD_LOCK.acquire()
    try:
        # Library warnings would only reach the app's log; errors come back as exceptions.
        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
        step("importing torch and transformers")
        from zhbench.engines.registry import load_engine, resolve
        from zhbench.workbench.session.chat_templates import remembered_template

        if spec.startswith(DEMO_PREFIX):
            from zhbench.workbench.session.offer import demo_model_path

            step("writing the tiny demo model (random weights; only the first time)")
            path = str(demo_model_path(spec, demo_folder))
        else:
            path = spec
        located, family = resolve(path)
        extra = {"strategy": strategy} if strategy else {}
        template = remembered_template(templates, located, family)
        if template is not None:
            extra["template"] = template
        step("reading the weights")
        return load_engine(str(located), family=family, device=device, extra=extra)
    finally:
        _LOAD_LOCK.release()


def run_reply(post: Post, job: ReplyJob) -> None:
    """Generate one reply, posting its text in batches and then how it ended; a failure is a message too."""
    stream = ReplyStream(
        job.engine,
        job.history,
        job.params,
        cancel=job.cancel,
        on_text=lambda text: post(ReplyChunkArrived(job.pane, job.generation, text)),
        on_reasoning=lambda thinking: post(ReplyChunkArrived(job.pane, job.generation, "", thinking)),
        interval=FLUSH_INTERVAL_S,  # text sent faster than the pane redraws only costs the UI thread
    )
    try:
        reply = stream.run()
    except GenerationError as exc:
        partial = exc.partial if isinstance(exc.partial, Reply) else None
        post(ReplyFailed(job.pane, job.generation, str(exc), partial))
    except Exception as exc:  # shown in the pane; the other panes and the app go on
        post(ReplyFailed(job.pane, job.generation, f"{type(exc).__name__}: {exc}", None))
    else:
        post(ReplyFinished(job.pane, job.generation, reply))


def poll_memory(post: Post, reader: MemoryReader, held: Callable[[], Iterable[tuple[str, str, int | None]]]) -> None:
    """Read memory about once a second until the worker is cancelled; a failed reading says why."""
    worker = get_current_worker()
    while not worker.is_cancelled:
        try:
            reading = reader(held())
        except Exception as exc:  # the meter says what went wrong and keeps polling
            reading = MemoryReading(gpu_note=f"memory unreadable ({type(exc).__name__}: {exc})")
        post(MemoryRead(reading))
        deadline = time.monotonic() + MEMORY_POLL_S
        while time.monotonic() < deadline and not worker.is_cancelled:
            time.sleep(0.05)


@dataclass
class LeaderboardComputed(Message):
    table: str  # the ratings with their intervals as bars
    matrix: str  # the win-rate heat map


@dataclass
class LeaderboardFailed(Message):
    reason: str


def compute_leaderboard(post: Post, *, include_named: bool, include_leaked: bool, style_control: bool) -> None:
    """Rank the stored votes (numpy and scipy load here, not before) and post the board as text."""
    from zhbench.workbench.session.arena.board_text import leaderboard_text, win_rate_text
    from zhbench.workbench.session.arena.identities import ranked_outcomes
    from zhbench.workbench.session.arena.leaderboard import compute_leaderboard as rank
    from zhbench.workbench.session.arena.leaderboard import select_outcomes
    from zhbench.workbench.session.arena.votes import ArenaDataError, VoteStore, bring_up_to_date, votes_path

    try:
        battles = []
        if votes_path().exists():
            bring_up_to_date()
            with VoteStore.open(read_only=True) as store:  # no lock taken: a vote being cast is not held up
                battles = store.battles()
        outcomes, notes = ranked_outcomes(battles)
        selection = select_outcomes(outcomes, include_named=include_named, include_leaked=include_leaked)
        board = rank(selection.outcomes, style_control=style_control)
    except (ArenaDataError, OSError, ValueError) as exc:
        post(LeaderboardFailed(str(exc)))
        return
    text = leaderboard_text(board, selection, {}, str(votes_path())) + "".join(f"{note}\n" for note in notes)
    post(LeaderboardComputed(text, win_rate_text(board)))


@dataclass
class PullProgressed(Message):
    repo_id: str
    progress: PullProgress


@dataclass
class PullEnded(Message):
    repo_id: str
    #: why it failed, or None when the model is on this machine now
    problem: str | None = None


def pull_model(
    post: Post,
    repo_id: str,
    hub: Hub,
    cancel: threading.Event,
    quant: str | None = None,
    preferred_quant: str | None = None,
) -> None:
    """Download ``repo_id`` (only what its family needs, the disk checked first; of a GGUF repository, the
    quantization ``quant`` as typed, else ``preferred_quant``, the config's) into the hub's cache."""
    from zhbench.engines.hub.download import plan_pull, pull
    from zhbench.engines.hub.hubs import DownloadCancelled

    def report(progress: PullProgress) -> None:
        post(PullProgressed(repo_id, progress))

    try:
        plan = plan_pull(repo_id, hub=hub, quant=quant, preferred_quant=preferred_quant)
        pull(plan, on_progress=report, cancel=cancel)
    except DownloadCancelled:
        post(PullEnded(repo_id, "cancelled; pull it again to go on"))
    except ZhbenchError as exc:
        post(PullEnded(repo_id, str(exc)))
    else:
        post(PullEnded(repo_id))


@dataclass
class SessionsFound(Message):
    """The saved sessions whose text holds ``query`` (all for ""), oldest first, and what the search lacked."""

    query: str
    rows: list[SessionRow]
    notes: list[str]


def find_sessions(post: Post, folder: Path, query: str) -> None:
    """The sessions list's rows: the search index caught up with the transcripts, then asked."""
    from zhbench.workbench.session.search import find_sessions as search

    found = search(folder, query or None)
    post(SessionsFound(query, found.rows, found.notes))
