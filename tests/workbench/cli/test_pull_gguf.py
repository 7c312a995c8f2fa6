"""``zhbench pull ID --quant TYPE`` from a repository of GGUF files: just that quantization's file(s), from
either hub's stand-in server; without ``--quant``, the list with sizes and a question (or the config's)."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from tests.engines.hub.conftest import fake_hub, fake_modelscope, repo_folder  # noqa: F401  # fixtures
from tests.engines.hub.fake_hub import FakeHub
from tests.engines.hub.fake_modelscope import FakeModelScope
from tests.engines.hub.gguf_writer import write_gguf
from zhbench.engines.hub.download import DownloadError, QuantizationNeeded, RemoteFile, choose_files, plan_pull
from zhbench.workbench.cli import main

GGUF_REPO = "Qwen/Qwen2.5-0.5B-Instruct-GGUF"
Q4 = "qwen2.5-0.5b-instruct-q4_k_m.gguf"
Q8 = "qwen2.5-0.5b-instruct-q8_0.gguf"
F16_PARTS = {f"qwen2.5-0.5b-instruct-fp16-0000{i}-of-00002.gguf" for i in (1, 2)}


@pytest.fixture
def gguf_repo(tmp_path: Path) -> Path:
    """A repository as Qwen publishes its GGUF ones: a file per quantization, a split one, a projector, docs."""
    folder = tmp_path / "gguf-repo"
    write_gguf(folder / Q4, "Q4_K_M")
    write_gguf(folder / Q8, "Q8_0")
    write_gguf(folder / "qwen2.5-0.5b-instruct-fp16.gguf", "F16", matrices=4, parts=2)
    write_gguf(folder / "mmproj-qwen2.5-f16.gguf", "F16")
    (folder / "README.md").write_text("# GGUF\n", encoding="utf-8")
    (folder / "LICENSE").write_text("Apache-2.0\n", encoding="utf-8")
    return folder


def test_a_quantization_is_chosen_by_its_name_in_any_spelling():
    listing = [RemoteFile(name, 100) for name in (Q4, Q8, *F16_PARTS, "mmproj-qwen2.5-f16.gguf", "README.md")]
    assert [f.name for f in choose_files(listing, quant="q4_k_m").files] == [Q4]
    assert {f.name for f in choose_files(listing, quant="fp16").files} == F16_PARTS  # every part, F16 as FP16
    with pytest.raises(QuantizationNeeded) as needed:
        choose_files(listing)
    assert needed.value.offers == {"F16": 200, "Q4_K_M": 100, "Q8_0": 100}  # no projector
    assert "choose one with --quant: F16 (200 B), Q4_K_M (100 B), Q8_0 (100 B)" in str(needed.value)
    with pytest.raises(DownloadError, match="--quant q2_k: not offered; the repository offers F16"):
        choose_files(listing, quant="q2_k")
    with pytest.raises(DownloadError, match="holds no GGUF files"):
        choose_files([RemoteFile("model.safetensors", 10), RemoteFile("config.json", 1)], quant="q4_k_m")


def test_pull_takes_just_that_quantizations_file(fake_hub: FakeHub, gguf_repo: Path, tmp_path, capsys):  # noqa: F811
    fake_hub.repos[GGUF_REPO] = gguf_repo
    plan = plan_pull(GGUF_REPO, quant="q4_k_m")  # the disk check counts that file alone
    assert plan.total_bytes == plan.missing_bytes == (gguf_repo / Q4).stat().st_size
    assert main(["pull", GGUF_REPO, "--quant", "q4_k_m"]) == 0
    err = capsys.readouterr().err
    assert fake_hub.fetched() == {Q4}
    assert f"{GGUF_REPO} from {fake_hub.url}: 1 files" in err and Q8 in err  # the others: not fetched
    snapshot = next((tmp_path / "hf-cache").glob("models--Qwen--Qwen2.5-0.5B-Instruct-GGUF/snapshots/*"))
    assert f"try it: zhbench chat --model {snapshot / Q4}" in err
    assert (snapshot / Q4).read_bytes() == (gguf_repo / Q4).read_bytes()

    assert main(["pull", GGUF_REPO, "--quant", "F16"]) == 0  # a split model: both parts
    assert fake_hub.fetched() == {Q4} | F16_PARTS


def test_without_quant_the_quantizations_are_listed_and_one_asked_for(
    fake_hub: FakeHub,  # noqa: F811
    gguf_repo: Path,
    tmp_path,
    capsys,
    monkeypatch,
):
    fake_hub.repos[GGUF_REPO] = gguf_repo
    monkeypatch.setattr("zhbench.workbench.session.config.config_path", lambda: tmp_path / "config.toml")
    assert main(["pull", GGUF_REPO]) == 1  # off a terminal: the list, nothing pulled
    err = capsys.readouterr().err
    assert "offers 3 quantizations; choose one with --quant: F16 (" in err and "Q4_K_M (" in err
    assert fake_hub.fetched() == set()

    monkeypatch.setattr("sys.stdin.isatty", lambda: True)
    monkeypatch.setattr("builtins.input", lambda prompt: "q8_0")
    assert main(["pull", GGUF_REPO]) == 0
    assert "  Q4_K_M" in capsys.readouterr().err and fake_hub.fetched() == {Q8}

    (tmp_path / "config.toml").write_text('quant = "q4_k_m"\n', encoding="utf-8")
    assert main(["pull", GGUF_REPO]) == 0  # the config's quantization, not asked
    assert fake_hub.fetched() == {Q8, Q4}


def test_pull_from_modelscope_takes_just_that_quantization(
    fake_modelscope: FakeModelScope,  # noqa: F811
    gguf_repo: Path,
    tmp_path,
    capsys,
):
    fake_modelscope.repos[GGUF_REPO] = gguf_repo
    assert main(["pull", GGUF_REPO, "--from", "modelscope", "--quant", "Q8_0"]) == 0
    folder = tmp_path / "ms-cache" / "models" / "Qwen--Qwen2.5-0.5B-Instruct-GGUF" / "snapshots" / "master"
    assert f"try it: zhbench chat --model {folder / Q8}" in capsys.readouterr().err
    assert sorted(p.name for p in folder.iterdir() if p.suffix == ".gguf") == [Q8]
    assert (folder / Q8).read_bytes() == (gguf_repo / Q8).read_bytes()


def test_the_apps_download_takes_the_typed_or_the_configs_quantization(fake_hub: FakeHub, gguf_repo: Path):  # noqa: F811
    from zhbench.workbench.workers import PullEnded, pull_model

    fake_hub.repos[GGUF_REPO] = gguf_repo
    posted: list[object] = []
    pull_model(posted.append, GGUF_REPO, "hf", threading.Event(), preferred_quant="q8_0")  # the config's
    assert isinstance(posted[-1], PullEnded) and posted[-1].problem is None
    assert fake_hub.fetched() == {Q8}
    pull_model(posted.append, GGUF_REPO, "hf", threading.Event(), "q4_k_m", "q8_0")  # typed OWNER/NAME:q4_k_m
    assert fake_hub.fetched() == {Q8, Q4}
    pull_model(posted.append, GGUF_REPO, "hf", threading.Event())  # neither: says what is offered
    assert isinstance(posted[-1], PullEnded) and "offers 3 quantizations" in str(posted[-1].problem)
