"""A GGUF model is named alike everywhere on the command line: ``models`` shows a file by its name (its path
under WHERE), ``chat`` names an Ollama model ``name:tag`` (not its blob), and ``serve`` serves a file under
its id, ``model.gguf`` with the suffix, as every record names it."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import pytest

from tests.engines.hub.gguf_writer import write_gguf, write_ollama_model
from zhbench.engines.registry import write_standin
from zhbench.workbench.cli import main
from zhbench.workbench.session.serving.app import served_model_id


def test_models_shows_a_gguf_file_by_its_name_and_its_path_under_where(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    file = write_gguf(tmp_path / "models" / "qwen2.5-0.5b-instruct-q8_0.gguf")
    assert main(["models", "--dir", str(tmp_path / "models")]) == 0
    [line] = [line for line in capsys.readouterr().out.splitlines() if "q8_0" in line]
    family, model, *_ = line.split()
    assert (family, model) == ("gguf", "qwen2.5-0.5b-instruct-q8_0.gguf")
    assert line.endswith(f"  {file}")  # the path, under WHERE
    assert line.count(str(file)) == 1


def test_serve_names_a_gguf_file_with_its_suffix_and_an_ollama_blob_by_its_name(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    file = write_gguf(tmp_path / "models" / "tiny-Q8_0.gguf")
    assert served_model_id(str(file)) == "tiny-Q8_0.gguf"
    monkeypatch.chdir(file.parent)
    assert main(["serve", "--model", "tiny-Q8_0.gguf", "--model", str(file)]) == 1
    assert "two models would be served as tiny-Q8_0.gguf" in capsys.readouterr().err
    store = tmp_path / "ollama"
    monkeypatch.setenv("OLLAMA_MODELS", str(store))
    blob = write_ollama_model(store, "qwen2.5", "7b", write_gguf(tmp_path / "blob.gguf"))
    assert served_model_id(str(blob)) == "qwen2.5:7b"
    assert served_model_id("qwen2.5:7b") == "qwen2.5:7b"


def test_chat_names_an_ollama_model_by_its_name_not_its_blob(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("llama_cpp", reason="the gguf extra is not installed (pip install -e '.[gguf]')")
    store = tmp_path / "ollama"
    monkeypatch.setenv("OLLAMA_MODELS", str(store))
    blob = write_ollama_model(store, "tiny-qwen", "q8", write_standin("gguf", tmp_path / "standin"))
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b""), encoding="utf-8"))
    assert main(["chat", "--model", "tiny-qwen:q8", "--device", "cpu"]) == 0
    banner = capsys.readouterr().out.splitlines()[0]
    assert banner.startswith("gguf · tiny-qwen:q8 · cpu")
    assert blob.name not in banner
