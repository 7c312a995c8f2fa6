"""Models in the current ModelScope client's cache layout are found, and `zhbench rm` finds them too."""

from __future__ import annotations

import shutil

from zhbench.engines.hub.caches import cached_copies, remove_cached
from zhbench.engines.hub.modelscope import MODELSCOPE
from zhbench.engines.hub.resolve import resolve_model


def test_the_current_modelscope_layout_is_found_and_removed(standin_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("MODELSCOPE_CACHE", str(tmp_path / "ms"))
    snapshot = tmp_path / "ms" / "models" / "Qwen--Qwen3-0.6B" / "snapshots" / "master"
    shutil.copytree(standin_dir("chat-template"), snapshot)
    assert resolve_model("Qwen/Qwen3-0.6B") == snapshot
    assert ("Qwen/Qwen3-0.6B", snapshot) in list(MODELSCOPE.cached())
    [copy] = cached_copies("Qwen/Qwen3-0.6B")
    assert copy.hub == "modelscope" and copy.folder == snapshot.parent.parent and copy.size_bytes > 0
    remove_cached(copy)
    assert not copy.folder.exists() and cached_copies("Qwen/Qwen3-0.6B") == []
