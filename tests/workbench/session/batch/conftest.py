"""A scripted engine for batch runs: answers, failures and timing chosen by the test, no model."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from zhbench.engines.api import EngineInfo, TextCallback
from zhbench.engines.types import GenerationParams, Message, Reply, ReplyStats, StopReason
from zhbench.workbench.session.batch.prompts import PromptItem
from zhbench.workbench.session.batch.runner import ModelProgress
from zhbench.workbench.session.batch.store import RunSettings

#: what the scripted engine answers a history with (raising makes that item fail)
Answer = Callable[[Sequence[Message], GenerationParams], str]


class ScriptedEngine:
    """A ``ChatEngine`` answering by ``answer``; ``path`` None makes it a server's model."""

    family = "scripted"

    def __init__(self, answer: Answer, *, path: str | None = "/models/scripted", delay_s: float = 0.0) -> None:
        self.answer = answer
        self.path = path
        self.delay_s = delay_s
        self.calls = 0
        self.in_flight = 0
        self.most_in_flight = 0
        self._lock = threading.Lock()

    def describe(self) -> EngineInfo:
        return EngineInfo(family=self.family, path=self.path, device="cpu" if self.path else None)

    def presets(self) -> dict[str, GenerationParams]:
        return {"default": GenerationParams(max_new_tokens=8)}

    def chat_commands(self) -> dict[str, str]:
        return {}

    def reply(
        self,
        history: Sequence[Message],
        params: GenerationParams | None = None,
        *,
        cancel: threading.Event | None = None,
        on_text: TextCallback | None = None,
        on_reasoning: TextCallback | None = None,
    ) -> Reply:
        params = params or GenerationParams()
        with self._lock:
            self.calls += 1
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            time.sleep(self.delay_s)
            text = self.answer(history, params)
        finally:
            with self._lock:
                self.in_flight -= 1
        stats = ReplyStats(len(history), len(text), 0.01, 100.0, max(self.delay_s, 0.01), StopReason.EOS)
        return Reply(self.family, text, params, stats)


class RecordingProgress:
    """A progress listener that keeps every event."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str, int]] = []

    def started(self, progress: ModelProgress) -> None:
        self.events.append(("started", progress.model, progress.done))

    def advanced(self, progress: ModelProgress) -> None:
        self.events.append(("advanced", progress.model, progress.finished))

    def finished(self, progress: ModelProgress) -> None:
        self.events.append(("finished", progress.model, progress.done))


def _settings(models: Sequence[str], items: int = 3, repeat: int = 1, **options: object) -> RunSettings:
    return RunSettings(
        source="test.jsonl",
        items=tuple(
            PromptItem(f"q{n}", ({"role": "user", "content": f"问题{n}"},), category="闲聊") for n in range(items)
        ),
        models=tuple(models),
        options=dict(options),
        repeat=repeat,
        seed=7,
        created="2026-01-01T00:00:00+00:00",
    )


@pytest.fixture
def make_settings() -> Callable[..., RunSettings]:
    """``make_settings(models, items=3, repeat=1, **options)``: a run of ``items`` one-line questions."""
    return _settings


@pytest.fixture
def scripted() -> type[ScriptedEngine]:
    return ScriptedEngine


@pytest.fixture
def progress() -> RecordingProgress:
    return RecordingProgress()


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    return tmp_path / "run"
