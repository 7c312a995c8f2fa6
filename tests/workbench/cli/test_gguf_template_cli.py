"""The command line loads a GGUF file that carries no chat template with the one the config's ``[templates]``
names for that model (by its id: the file's name, an Ollama model's ``name:tag``), as the app remembers it;
``--template`` still wins."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from tests.engines.hub.gguf_writer import without_template, write_ollama_model
from zhbench.engines.families.gguf.engine import CATALOG_DIR
from zhbench.engines.registry import write_standin
from zhbench.workbench.cli import main
from zhbench.workbench.session.config import config_path

pytest.importorskip("llama_cpp", reason="the gguf extra is not installed (pip install -e '.[gguf]')")

HISTORY = [{"role": "user", "content": "你好，今天天气怎么样？"}]


@pytest.fixture(scope="module")
def bare_gguf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A GGUF stand-in with no chat template in its metadata."""
    folder = tmp_path_factory.mktemp("bare")
    return without_template(write_standin("gguf", folder / "standin"), folder / "bare.gguf")


def prompt_ids(capsys: pytest.CaptureFixture[str], model: str, history: Path, *options: str) -> list[int] | str:
    """The ids ``prompt --json`` shows for ``model``, or the error it printed."""
    code = main(["prompt", "--model", model, "--history", str(history), "--json", *options])
    out, err = capsys.readouterr()
    return json.loads(out)["input_ids"] if code == 0 else err


def write_config(text: str) -> None:
    config_path().parent.mkdir(parents=True, exist_ok=True)
    config_path().write_text(text, encoding="utf-8")


def test_the_config_s_template_for_a_file_is_used_when_none_is_given(
    bare_gguf: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    history = tmp_path / "history.json"
    history.write_text(json.dumps(HISTORY, ensure_ascii=False), encoding="utf-8")
    model = str(bare_gguf)
    refused = prompt_ids(capsys, model, history)
    assert isinstance(refused, str) and "has no chat template in its metadata" in refused
    assert "[templates]" in refused
    chatml = prompt_ids(capsys, model, history, "--template", "chatml")
    write_config('[templates]\n"bare.gguf" = "chatml"\n')
    assert prompt_ids(capsys, model, history) == chatml
    glm = prompt_ids(capsys, model, history, "--template", "glm-4.6")  # given: it wins over the config's
    assert isinstance(glm, list) and glm != chatml


def test_an_ollama_model_takes_the_template_named_for_its_name_and_tag(
    bare_gguf: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    store = tmp_path / "ollama"
    monkeypatch.setenv("OLLAMA_MODELS", str(store))
    write_ollama_model(store, "tiny-qwen", "bare", Path(shutil.copy(bare_gguf, tmp_path)))
    argv = ["ask", "--model", "tiny-qwen:bare", "--json", "--greedy", "--max-new-tokens", "2", "你好"]
    assert main(argv) == 1
    assert "has no chat template" in capsys.readouterr().err
    write_config('[templates]\n"tiny-qwen:bare" = "chatml"\n')
    assert main(argv) == 0
    assert json.loads(capsys.readouterr().out)["stats"]["new_tokens"] >= 1


def test_one_wrong_templates_entry_is_named_and_the_others_still_hold(
    bare_gguf: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    history = tmp_path / "history.json"
    history.write_text(json.dumps(HISTORY, ensure_ascii=False), encoding="utf-8")
    chatml = prompt_ids(capsys, str(bare_gguf), history, "--template", "chatml")
    write_config('[templates]\n"bare.gguf" = "chatml"\n"other.gguf" = 3\n')
    code = main(["prompt", "--model", str(bare_gguf), "--history", str(history), "--json"])
    out, err = capsys.readouterr()
    assert code == 0 and json.loads(out)["input_ids"] == chatml
    assert [line for line in err.splitlines() if "other.gguf" in line] == [
        f"zhbench: warning: {config_path()}: [templates] 'other.gguf' should be a template name or a .jinja file; "
        "ignored"
    ]


def test_a_template_file_that_is_no_chat_template_or_no_file_is_refused_as_what_it_is(
    bare_gguf: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    history = tmp_path / "history.json"
    history.write_text(json.dumps(HISTORY, ensure_ascii=False), encoding="utf-8")
    model = str(bare_gguf)
    text = tmp_path / "notes.txt"  # any text compiles as a template: it would be the prompt, the chat left out
    text.write_text("root:x:0:0:root:/root:/bin/bash\n", encoding="utf-8")
    refused = prompt_ids(capsys, model, history, "--template", str(text))
    assert isinstance(refused, str) and "never uses messages" in refused and len(refused.splitlines()) == 1
    fifo = tmp_path / "fifo.jinja"
    os.mkfifo(fifo)
    refused = prompt_ids(capsys, model, history, "--template", str(fifo))
    assert isinstance(refused, str) and f"{fifo} is a FIFO, not a regular file" in refused
    refused = prompt_ids(capsys, model, history, "--template", "/dev/zero")
    assert isinstance(refused, str) and "/dev/zero is a character device, not a regular file" in refused
    own = tmp_path / "own.jinja"  # a real one still loads, as the catalog's
    shutil.copy(CATALOG_DIR / "chatml.jinja", own)
    assert prompt_ids(capsys, model, history, "--template", str(own)) == prompt_ids(
        capsys, model, history, "--template", "chatml"
    )


def test_an_ollama_model_without_a_template_is_named_as_given_with_the_entry_its_modelfile_suggests(
    bare_gguf: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    store = tmp_path / "ollama"
    monkeypatch.setenv("OLLAMA_MODELS", str(store))
    go_chatml = "{{ if .System }}<|im_start|>system\n{{ .System }}<|im_end|>\n{{ end }}<|im_start|>user\n"
    blob = write_ollama_model(store, "tiny-qwen", "bare", Path(shutil.copy(bare_gguf, tmp_path)), template=go_chatml)
    assert main(["ask", "--model", "tiny-qwen:bare", "你好"]) == 1
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith("zhbench: error: tiny-qwen:bare: has no chat template") and str(blob) not in line
    assert f'write "tiny-qwen:bare" = "chatml" under [templates] in {config_path()}' in line
