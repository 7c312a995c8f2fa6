"""A GGUF model whose file carries no chat template (an Ollama model whose template lives only in its
Modelfile) loads in the app: it asks which catalog template, suggests the one whose special tokens the
Modelfile's Go template uses, remembers the answer in the config, and the model loads with it."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from app_driver import models_loaded, wait_until

from tests.engines.hub.gguf_writer import without_template, write_ollama_model
from zhbench.engines.registry import write_standin
from zhbench.widgets.choice_dialog import ChoiceDialog
from zhbench.widgets.composer import Composer
from zhbench.workbench.app import ZhbenchApp
from zhbench.workbench.session.config import load_config

pytest.importorskip("llama_cpp", reason="the gguf extra is not installed (pip install -e '.[gguf]')")

SIZE = (150, 40)
#: Ollama's TEMPLATE for a ChatML model, a Go template
GO_CHATML = (
    "{{- if .System }}<|im_start|>system\n{{ .System }}<|im_end|>\n{{ end }}"
    "{{- range .Messages }}<|im_start|>{{ .Role }}\n{{ .Content }}<|im_end|>\n{{ end }}<|im_start|>assistant\n"
)


@pytest.fixture(scope="module")
def bare_gguf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A GGUF stand-in with no chat template in its metadata."""
    folder = tmp_path_factory.mktemp("bare")
    return without_template(write_standin("gguf", folder / "standin"), folder / "bare.gguf")


@pytest.fixture
def bare_ollama_model(bare_gguf: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """``tiny-qwen:bare`` in an Ollama store of its own: ``bare_gguf``, and its Modelfile's template (ChatML, as
    a Go template) as a layer of its own."""
    store = tmp_path / "ollama"
    monkeypatch.setenv("OLLAMA_MODELS", str(store))
    write_ollama_model(store, "tiny-qwen", "bare", Path(shutil.copy(bare_gguf, tmp_path)), template=GO_CHATML)
    return "tiny-qwen:bare"


async def test_a_model_without_a_template_is_asked_for_one_loads_with_it_and_the_config_remembers(
    make_app: Callable[..., ZhbenchApp], tmp_path: Path, bare_ollama_model: str
) -> None:
    config_file = tmp_path / "config.toml"
    config_file.write_text('theme = "zhbench-dark"\n\n[params.gguf]\ntemperature = 0.5\n', encoding="utf-8")
    app = make_app(config=load_config(config_file), preload={"a": bare_ollama_model})
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(lambda: isinstance(app.screen, ChoiceDialog), what="the template question")
        dialog = app.screen
        assert isinstance(dialog, ChoiceDialog)
        assert [name for name, _ in dialog.choices] == ["chatml", "deepseek-r1-distill", "glm-4.6", "qwen2.5", "qwen3"]
        assert dialog.preselected == "chatml"  # the Go template's special tokens are ChatML's
        assert bare_ollama_model in dialog.question and "[templates]" in dialog.question
        assert app.bench.pane("a").engine is None
        await pilot.press("down", "up")  # back on the suggestion
        await pilot.press("enter")
        await models_loaded(app, "a")
        engine = app.bench.pane("a").engine
        assert engine is not None and engine.describe().details["chat_template"] == "catalog chatml"
        assert app.bench.pane("a").label == bare_ollama_model
    assert load_config(config_file).templates == {bare_ollama_model: "chatml"}
    text = config_file.read_text(encoding="utf-8")
    assert text.startswith('theme = "zhbench-dark"\n\n[params.gguf]\ntemperature = 0.5\n')  # the rest kept

    again = make_app(config=load_config(config_file), preload={"a": bare_ollama_model})
    async with again.run_test(size=SIZE):
        await models_loaded(again, "a")  # remembered: no question this time
        assert not isinstance(again.screen, ChoiceDialog)


async def test_a_remembered_template_that_is_gone_is_asked_again_and_cancelling_says_why(
    make_app: Callable[..., ZhbenchApp], tmp_path: Path, bare_ollama_model: str
) -> None:
    config_file = tmp_path / "config.toml"
    remembered = f'[templates]\n"{bare_ollama_model}" = "gone"\n'
    config_file.write_text(remembered, encoding="utf-8")
    app = make_app(config=load_config(config_file), preload={"a": bare_ollama_model})
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(lambda: isinstance(app.screen, ChoiceDialog), what="the template question")
        await pilot.press("escape")
        await wait_until(lambda: isinstance(app.focused, Composer), what="the bench")
        status = str(app.screen.query_one("#pane-a .pane-status").render())
        assert f"could not load {bare_ollama_model}" in status and "no chat template 'gone'" in status
        assert app.bench.pane("a").engine is None
    assert config_file.read_text(encoding="utf-8") == remembered
