"""GGUF models in the real app's model list: family and quantization side by side, the fit mark, and an Ollama
model that cannot be used listed with its reason."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from app_driver import wait_until

from tests.engines.hub.gguf_writer import write_gguf, write_ollama_model
from zhbench.widgets.composer import Composer
from zhbench.widgets.model_list import ModelList
from zhbench.workbench.app import ZhbenchApp


async def test_gguf_rows_show_their_quantization_and_an_unusable_one_its_reason(
    make_app: Callable[..., ZhbenchApp], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = tmp_path / "ollama"
    monkeypatch.setenv("OLLAMA_MODELS", str(store))
    write_ollama_model(store, "qwen2.5", "7b", write_gguf(tmp_path / "blob.gguf", "Q4_K_M"))
    write_ollama_model(store, "deepseek-r1", "1.5b", None)
    app = make_app()
    async with app.run_test(size=(150, 40)):
        await wait_until(lambda: app.discovered is not None and isinstance(app.focused, Composer), what="the bench")
        table = app.query_one(ModelList).table
        rows = [[str(cell) for cell in table.get_row_at(index)] for index in range(table.row_count)]
        shown = {row[0]: row for row in rows}
        assert shown["qwen2.5:7b"][1] == "gguf Q4_K_M" and shown["qwen2.5:7b"][3].endswith("✓")
        [missing] = [name for name in shown if name.startswith("deepseek-r1:1.5b (")]
        assert "weights blob sha256-" in missing and "is missing" in missing
