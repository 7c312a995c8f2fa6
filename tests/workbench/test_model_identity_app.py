"""The app names a model by its one id: by hub id, by path or from the list, the same pane title."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from app_driver import models_loaded, wait_until

from zhbench.widgets.chat_pane import ChatPane
from zhbench.workbench.app import ZhbenchApp
from zhbench.workbench.session.transcripts import read_session

REPO = "ClueAI/ChatYuan-large-v1"


async def test_a_model_loaded_by_hub_id_by_path_or_from_the_list_has_one_title(
    make_app: Callable[..., ZhbenchApp],
    standin_dir: Callable[..., Path],
    hf_cached: Callable[[Path, str, Path], Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
    snapshot = hf_cached(tmp_path / "hf", REPO, standin_dir("chatyuan"))
    app = make_app(preload={"a": REPO, "b": str(snapshot)})
    async with app.run_test(size=(150, 40)) as pilot:
        await models_loaded(app, "a", "b")
        await pilot.pause()
        titles = [str(app.query_one(f"#pane-{pane}", ChatPane).border_title) for pane in "ab"]
        assert titles == [f"A · {REPO}", f"B · {REPO}"]
        await wait_until(lambda: app.rows != [], what="the model list")
        (row,) = [row for row in app.rows if row.path is not None]
        app.bench_screen.request_load("b", row.key, row.name)  # from the list, under the catalog's name
        await wait_until(lambda: app.bench.pane("b").loading is None and app.bench.pane("b").engine is not None)
        await pilot.pause()
        assert str(app.query_one("#pane-b", ChatPane).border_title) == f"B · {REPO}"
        app.bench.send("你好", ["a"])
        assert app.bench.transcript is not None
        pane = read_session(app.bench.transcript.path).header.panes["a"]
        assert pane is not None and (pane.model, pane.fingerprint) == (REPO, f"revision:{snapshot.name}")
        app.bench.stop(["a"])
