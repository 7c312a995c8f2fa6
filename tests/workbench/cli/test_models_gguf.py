"""GGUF models wherever people keep them, in ``zhbench models`` (and ``--json``): family gguf, quantization,
parameters, size on disk, memory estimate and fit; an Ollama name loads its blob, checked for fit first."""

from __future__ import annotations

import json
import shutil

import pytest

from tests.engines.hub.gguf_writer import WIDTH, write_gguf, write_ollama_model
from zhbench.engines.api import LoadOptions
from zhbench.engines.families.gguf.memory import estimate_memory
from zhbench.engines.registry import write_standin
from zhbench.workbench.cli import main


def models_json(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, dict[str, object]]:
    assert main(["models", "--json", *args]) == 0
    return {str(row["id"]): row for row in json.loads(capsys.readouterr().out) if row["source"] == "local"}


def test_gguf_models_from_every_place_are_listed_with_quantization_size_and_fit(tmp_path, capsys, monkeypatch):
    dirs = tmp_path / "models"
    write_gguf(dirs / "qwen2.5-0.5b-instruct-q8_0.gguf")
    write_gguf(dirs / "qwen2.5-0.5b-instruct-f16.gguf", "F16", matrices=4, parts=3)
    write_gguf(dirs / "mmproj-qwen2-vl-f16.gguf", "F16")
    store = tmp_path / "ollama"
    monkeypatch.setenv("OLLAMA_MODELS", str(store))
    blob = write_ollama_model(store, "qwen2.5", "7b", write_gguf(tmp_path / "blob.gguf", "Q4_K_M"))
    write_ollama_model(store, "deepseek-r1", "1.5b", None)
    studio = tmp_path / "lmstudio"
    monkeypatch.setattr("zhbench.engines.hub.lmstudio.FOLDERS", (studio,))
    write_gguf(studio / "lmstudio-community" / "Yi-GGUF" / "Yi-6B-Q8_0.gguf")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))  # its own: the session's cache is shared
    hf_repo = tmp_path / "hf" / "models--Qwen--Qwen2.5-7B-Instruct-GGUF"
    write_gguf(hf_repo / "snapshots" / "abc" / "qwen2.5-7b-instruct-q4_k_m.gguf", "Q4_K_M")
    (hf_repo / "refs").mkdir()
    (hf_repo / "refs" / "main").write_text("abc")

    rows = models_json(capsys, "--dir", str(dirs))
    split = str(dirs / "qwen2.5-0.5b-instruct-f16-00001-of-00003.gguf")
    expected = {
        str(dirs / "qwen2.5-0.5b-instruct-q8_0.gguf"): "Q8_0",
        split: "F16",  # one row for the three parts
        "qwen2.5:7b": "Q4_K_M",
        "lmstudio-community/Yi-GGUF/Yi-6B-Q8_0.gguf": "Q8_0",
        "Qwen/Qwen2.5-7B-Instruct-GGUF/qwen2.5-7b-instruct-q4_k_m.gguf": "Q4_K_M",
    }
    assert {key: rows[key]["quantization"] for key in expected} == expected
    assert all(rows[key]["family"] == "gguf" for key in expected)
    assert not any("mmproj" in key for key in rows)  # a projector is no chat model
    assert rows[split]["parameters"] == 4 * WIDTH * 256 + WIDTH
    assert rows[split]["size_bytes"] == sum(p.stat().st_size for p in dirs.glob("*-f16-*.gguf"))
    ollama = rows["qwen2.5:7b"]
    assert ollama["path"] == str(blob) and ollama["fit"] == "fits"
    assert ollama["estimated_bytes"] == estimate_memory(blob, LoadOptions(), None).total_bytes
    missing = rows["deepseek-r1:1.5b"]
    assert missing["fit"] is None and "is missing" in str(missing["problem"])

    assert main(["models"]) == 0
    table = capsys.readouterr().out
    assert "gguf" in table and "qwen2.5:7b" in table and "Q4_K_M" in table and "✓" in table


def test_an_ollama_name_is_resolved_detected_and_checked_for_fit_before_loading(tmp_path, capsys, monkeypatch):
    store = tmp_path / "ollama"
    monkeypatch.setenv("OLLAMA_MODELS", str(store))
    write_ollama_model(store, "qwen2.5", "7b", write_gguf(tmp_path / "blob.gguf", "Q4_K_M"))
    monkeypatch.setattr("zhbench.workbench.session.fit_check.available_ram_bytes", lambda: 100 * 2**20)
    assert main(["ask", "--model", "qwen2.5:7b", "--device", "cpu", "你好"]) == 1
    err = capsys.readouterr().err
    assert "qwen2.5:7b does not fit: needs about 161 MiB on cpu (Q4_K_M; weights 18 KiB + cache 1.0 MiB at 4096" in err
    shutil.rmtree(store / "blobs")
    assert main(["ask", "--model", "qwen2.5:7b", "你好"]) == 1
    assert "qwen2.5:7b (Ollama): its weights blob sha256-" in capsys.readouterr().err


def test_an_ollama_model_answers_from_its_blob_in_place(tmp_path, capsys, monkeypatch):
    pytest.importorskip("llama_cpp", reason="the gguf extra is not installed (pip install -e '.[gguf]')")
    store = tmp_path / "ollama"
    monkeypatch.setenv("OLLAMA_MODELS", str(store))
    write_ollama_model(store, "tiny-qwen", "q8", write_standin("gguf", tmp_path / "standin"))
    files = sorted(store.rglob("*"))
    assert main(["ask", "--model", "tiny-qwen:q8", "--json", "--greedy", "--max-new-tokens", "4", "你好"]) == 0
    answer = json.loads(capsys.readouterr().out)
    assert answer["family"] == "gguf" and answer["stats"]["new_tokens"] >= 1
    assert sorted(store.rglob("*")) == files  # read where it is: nothing copied or added


def test_a_truncated_gguf_file_is_listed_with_its_reason(tmp_path, capsys):
    cut = write_gguf(tmp_path / "models" / "cut-Q8_0.gguf")
    cut.write_bytes(cut.read_bytes()[:-5000])  # a download cut short
    row = models_json(capsys, "--dir", str(tmp_path / "models"))[str(cut)]
    assert row["family"] == "gguf" and row["fit"] is None and row["estimated_bytes"] is None
    assert str(row["problem"]).startswith("truncated GGUF file: its tensors need")
