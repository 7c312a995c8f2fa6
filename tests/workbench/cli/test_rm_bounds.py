"""``zhbench rm`` deletes exactly one model's folder inside a known cache, and nothing else (issue 26 §1)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from zhbench.workbench.cli import main

MODEL_FILES = {"config.json": "{}", "model.safetensors": "x" * 1000}


def _model(folder: Path) -> Path:
    folder.mkdir(parents=True)
    for name, text in MODEL_FILES.items():
        (folder / name).write_text(text)
    return folder


def _tree(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


@pytest.fixture
def fresh_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A home with the caches where the clients put them by default, and things that are not zhbench's."""
    home = tmp_path / "home"
    for variable in ("HF_HUB_CACHE", "HF_HOME", "MODELSCOPE_CACHE"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("HOME", str(home))
    _model(home / ".cache" / "modelscope" / "hub" / "Qwen" / "Qwen-1_8B-Chat")
    _model(home / ".cache" / "modelscope" / "hub" / "models" / "Qwen" / "Qwen2___5-0___5B")
    _model(home / ".cache" / "modelscope" / "hub" / "models" / "Qwen" / "Qwen3-0___6B")
    (home / ".cache" / "pip").mkdir(parents=True)
    (home / ".cache" / "pip" / "precious").write_text("not zhbench's")
    (home / "notes.txt").write_text("not zhbench's either")
    return home


@pytest.mark.parametrize(
    "target",
    ["../..", "../hub", "./..", "..", "../../..", "/etc", str(Path.home()), "Qwen/..", "Qwen/../..", "a/b/c",
     "models/Qwen", "hub/models", "~", ".", "Qwen/Qwen3-0.6B/.."],
)  # fmt: skip
def test_rm_refuses_anything_but_one_models_folder(fresh_home: Path, target: str, capsys, monkeypatch):
    before = _tree(fresh_home)
    assert main(["rm", target, "--yes"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("zhbench: error:"), err
    assert _tree(fresh_home) == before


def test_rm_under_a_modelscope_cache_variable_stays_in_it(tmp_path: Path, capsys, monkeypatch):
    outside = tmp_path / "outside"
    _model(outside / "keep")
    cache = tmp_path / "outside" / "ms"
    _model(cache / "models" / "Qwen" / "Qwen3-0___6B")
    monkeypatch.setenv("MODELSCOPE_CACHE", str(cache))
    before = _tree(tmp_path)
    for target in ("../..", "../keep", "..", "models/Qwen"):
        assert main(["rm", target, "--yes"]) == 1
    assert _tree(tmp_path) == before
    capsys.readouterr()
    assert main(["rm", "Qwen/Qwen3-0.6B", "--yes"]) == 0
    assert not (cache / "models" / "Qwen" / "Qwen3-0___6B").exists()
    assert (outside / "keep" / "config.json").exists() and (cache / "models" / "Qwen").is_dir()


def test_an_overlong_or_odd_id_is_one_clear_line(fresh_home: Path, capsys):
    for target in ("a" * 5000 + "/b", "Qwen/\x1b]0;owned\x07", "Qwen/Qwen\nx"):
        assert main(["rm", target, "--yes"]) == 1
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and len(err) < 400 and "\x1b" not in err and "\x07" not in err, err
        assert "not a hub id" in err


def test_a_link_out_of_the_cache_on_the_way_is_refused(tmp_path: Path, capsys, monkeypatch):
    cache = tmp_path / "ms"
    elsewhere = tmp_path / "elsewhere"
    _model(elsewhere / "Name")
    (cache / "models").mkdir(parents=True)
    (cache / "models" / "Owner").symlink_to(elsewhere)  # the owner folder leads out of the cache
    monkeypatch.setenv("MODELSCOPE_CACHE", str(cache))
    assert main(["rm", "Owner/Name", "--yes"]) == 1
    assert "leads outside the cache" in capsys.readouterr().err
    assert (elsewhere / "Name" / "model.safetensors").exists()


def test_a_linked_model_folder_loses_the_link_not_what_it_leads_to(tmp_path: Path, capsys, monkeypatch):
    cache = tmp_path / "ms"
    weights = _model(tmp_path / "my-weights")
    (cache / "models" / "Owner").mkdir(parents=True)
    (cache / "models" / "Owner" / "Name").symlink_to(weights)
    monkeypatch.setenv("MODELSCOPE_CACHE", str(cache))
    assert main(["rm", "Owner/Name", "--yes"]) == 0
    err = capsys.readouterr().err
    assert f"a link to {weights}: only the link" in err
    assert not (cache / "models" / "Owner" / "Name").is_symlink()
    assert _tree(weights) == sorted(MODEL_FILES)


def test_a_linked_hugging_face_repository_loses_the_link_only(tmp_path: Path, capsys, monkeypatch):
    cache = tmp_path / "hf"
    repo = tmp_path / "big-disk" / "models--Owner--Name"
    snapshot = _model(repo / "snapshots" / ("0" * 40))
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("0" * 40)
    cache.mkdir()
    (cache / "models--Owner--Name").symlink_to(repo)
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    assert main(["rm", "Owner/Name", "--yes"]) == 0
    assert not (cache / "models--Owner--Name").exists() and (snapshot / "model.safetensors").exists()


def test_rm_says_what_it_deletes_and_asks_only_on_a_terminal(tmp_path: Path, capsys, monkeypatch):
    cache = tmp_path / "ms"
    folder = _model(cache / "models" / "Owner--Name" / "snapshots" / "master")
    monkeypatch.setenv("MODELSCOPE_CACHE", str(cache))
    asked: list[str] = []
    monkeypatch.setattr("builtins.input", lambda question: asked.append(question) or "y")
    assert main(["rm", "Owner/Name"]) == 1  # pytest's stdin is no terminal: refused, not asked
    err = capsys.readouterr().err
    assert f"{folder.parent.parent}" in err and "1002 B" in err and "pass --yes" in err
    assert asked == [] and folder.exists()

    monkeypatch.setattr(sys.stdin, "isatty", lambda: True)
    assert main(["rm", "Owner/Name"]) == 0
    assert asked and "Owner/Name" in asked[0] and not folder.parent.parent.exists()
