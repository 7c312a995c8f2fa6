"""The first screen comes before any heavy import, and a killed session loses no finished message."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from zhbench.workbench.session.transcripts import read_session

HEAVY = ("torch", "transformers", "rwkv", "modelscope", "tokenizers", "jieba")


def run_python(code: str, tmp_path: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "XDG_DATA_HOME": str(tmp_path / "data"),
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "XDG_CACHE_HOME": str(tmp_path / "cache"),
    }
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], env=env, capture_output=True, text=True, timeout=timeout
    )


def test_the_first_screen_paints_before_torch_or_transformers_is_imported(
    tmp_path: Path, standin_dir: Callable[..., Path]
) -> None:
    model = standin_dir("gpt2-dialogbot")
    code = f"""
        import asyncio, json, sys
        from zhbench.workbench.app import ZhbenchApp

        HEAVY = {HEAVY!r}

        async def main():
            app = ZhbenchApp(offer_demos=False)
            async with app.run_test(size=(120, 36)) as pilot:
                painted = app.query_one("#pane-b").region.width > 0  # laid out and drawn
                before = [m for m in HEAVY if m in sys.modules]
                app.bench_screen.load_model("a", {str(model)!r}, "tiny")
                while app.bench.pane("a").engine is None:
                    await pilot.pause(0.05)
                after = [m for m in ("torch", "transformers") if m in sys.modules]
            print(json.dumps({{"painted": painted, "before": before, "after": after}}))

        asyncio.run(main())
    """
    result = run_python(code, tmp_path)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["painted"] is True
    assert report["before"] == []
    assert report["after"] == ["torch", "transformers"]  # the loading worker imports them, and only it


@pytest.mark.slow
def test_killing_the_app_mid_reply_keeps_every_finished_message_and_the_partial_reply(
    tmp_path: Path, standin_dir: Callable[..., Path]
) -> None:
    model = standin_dir("chatyuan")
    transcripts = tmp_path / "transcripts"
    code = f"""
        import asyncio, json, os, signal
        from pathlib import Path
        from zhbench.workbench.app import ZhbenchApp
        from zhbench.widgets.composer import Composer

        async def main():
            app = ZhbenchApp(preload={{"a": {str(model)!r}, "b": {str(model)!r}}}, offer_demos=False,
                             transcripts_folder=Path({str(transcripts)!r}))
            async with app.run_test(size=(120, 36)) as pilot:
                while not all(p.engine is not None for p in app.bench.panes):
                    await pilot.pause(0.05)
                composer = app.query_one(Composer)
                composer.text = "第一句"
                await pilot.press("enter")
                while any(p.busy for p in app.bench.panes):
                    await pilot.pause(0.05)
                app.bench.pane("a").params = app.bench.pane("a").params.with_overrides({{"max_new_tokens": 100000}})
                composer.text = "第二句，说很久"
                await pilot.press("ctrl+t")
                while True:  # once a checkpoint of the long reply is on disk, die without any cleanup
                    await pilot.pause(0.05)
                    lines = app.bench.transcript.path.read_text(encoding="utf-8").splitlines()
                    records = [json.loads(line) for line in lines]
                    if any(r.get("turn") == 2 and r.get("role") == "assistant" for r in records):
                        os.kill(os.getpid(), signal.SIGKILL)

        asyncio.run(main())
    """
    result = run_python(code, tmp_path)
    assert result.returncode == -9, result.stderr
    (session_file,) = transcripts.glob("*.jsonl")
    session = read_session(session_file)
    messages = session.messages
    first_turn = sorted((m.pane, m.role) for m in messages[:4])  # the panes finish in either order
    assert first_turn == [("a", "assistant"), ("a", "user"), ("b", "assistant"), ("b", "user")]
    assert [(m.pane, m.role) for m in messages[4:]] == [("a", "user"), ("a", "assistant")]
    finished = [m for m in messages[:4] if m.role == "assistant"]
    assert all(m.partial is False and m.stats for m in finished)
    cut = messages[-1]
    assert cut.pane == "a" and cut.role == "assistant" and cut.partial is True and cut.content
    assert messages[-2].content == "第二句，说很久"
