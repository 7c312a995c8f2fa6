"""``zhbench chat --resume`` of a session with branches goes on from the branch shown, and ``/save`` writes the
system prompt ``/system`` set into the Markdown export (issue 27 items 3 and 4)."""

from __future__ import annotations

import io
import re
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from zhbench.engines.registry import load_engine
from zhbench.workbench.cli import main
from zhbench.workbench.session.bench import Bench
from zhbench.workbench.session.reopen import reopen
from zhbench.workbench.session.transcripts import read_session, session_files


def chat(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, typed: str, *argv: str) -> str:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(typed.encode()), encoding="utf-8"))
    code = main(["chat", *argv])
    out, err = capsys.readouterr()
    assert code == 0, err
    return out


def test_resume_goes_on_from_the_branch_shown(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    user_dirs: dict[str, Path],
    standin_dir: Callable[..., Path],
) -> None:
    folder = user_dirs["data"] / "zhbench" / "transcripts"
    bench = Bench(folder, pane_count=1)
    generation = bench.begin_load("a", "dialogbot")
    assert generation is not None
    bench.model_loaded("a", generation, load_engine(str(standin_dir("gpt2-dialogbot")), device="cpu"), demo=False)
    for send in (lambda: bench.send("原来的问题", ["a"]), lambda: bench.edit("a", "a-1-user", "改过的问题")):
        (job,) = send()
        bench.reply_finished("a", job.generation, job.engine.reply(job.history, job.params, cancel=job.cancel))
    assert bench.transcript is not None
    bench.transcript.close()

    out = chat(capsys, monkeypatch, "接着\n", "--resume")
    assert "user> 改过的问题" in out and "原来的问题" not in out  # the conversation as shown
    (path,) = session_files(folder)
    shown = [entry.text for entry in reopen(read_session(path)).panes["a"].shown if entry.role == "user"]
    assert shown == ["改过的问题", "接着"]


def test_save_writes_the_system_prompt_into_the_markdown_export(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    user_dirs: dict[str, Path],
    standin_dir: Callable[..., Path],
) -> None:
    argv = ["--model", str(standin_dir("chat-template")), "--max-new-tokens", "2", "--seed", "1"]
    out = chat(capsys, monkeypatch, "/system 你是一位诗人\n你好\n再来\n/save\n", *argv)
    (markdown,) = (Path(found) for found in re.findall(r"\(wrote (\S+\.md)\)", out))
    text = markdown.read_text(encoding="utf-8")
    assert text.count("你是一位诗人") == 1 and text.index("你是一位诗人") < text.index("**A · ")
