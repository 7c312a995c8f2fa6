"""``zhbench pull``, ``zhbench rm`` and the memory-fit refusal of ``ask``."""

from __future__ import annotations

import json

from tests.engines.hub.conftest import REPO, fake_hub, fake_modelscope, repo_folder  # noqa: F401  # fixtures
from tests.engines.hub.fake_hub import FakeHub
from tests.engines.hub.fake_modelscope import FakeModelScope
from zhbench.workbench.cli import main


def test_pull_then_rm(fake_hub: FakeHub, capsys, monkeypatch):  # noqa: F811
    assert main(["pull", REPO]) == 0
    err = capsys.readouterr().err
    assert f"{REPO} from {fake_hub.url}: 6 files" in err
    assert "not fetched (not needed): " in err and "pytorch_model.bin" in err and "optimizer.pt" in err
    assert f"try it: zhbench chat --model {REPO}" in err

    monkeypatch.setattr("builtins.input", lambda prompt: "n")
    monkeypatch.setattr("sys.stdin.isatty", lambda: True)
    assert main(["rm", REPO]) == 1
    assert "nothing removed" in capsys.readouterr().err
    assert main(["rm", REPO, "--yes"]) == 0
    assert f"removed {REPO}" in capsys.readouterr().err

    assert main(["models", "--json"]) == 0
    rows = {row["id"]: row for row in json.loads(capsys.readouterr().out)}
    assert rows[REPO]["path"] is None
    assert main(["rm", REPO, "--yes"]) == 1
    assert "in neither the Hugging Face nor the ModelScope cache" in capsys.readouterr().err


def test_pull_from_modelscope_takes_a_catalog_models_copy_there_and_draws_only_zhbench_progress(
    fake_modelscope: FakeModelScope,  # noqa: F811
    repo_folder,  # noqa: F811
    tmp_path,
    capsys,
):
    fake_modelscope.repos["ClueAI/ChatYuan-large"] = repo_folder  # ClueAI/ChatYuan-large-v1's ModelScope id
    assert main(["pull", "ClueAI/ChatYuan-large-v1", "--from", "modelscope"]) == 0
    err = capsys.readouterr().err
    assert f"ClueAI/ChatYuan-large from {fake_modelscope.url}: 6 files" in err
    skipped = "README.md, onnx/model.onnx, optimizer.pt, pytorch_model.bin, training_args.bin"  # no folder onnx
    assert f"not fetched (not needed): {skipped}\n" in err
    folder = tmp_path / "ms-cache" / "models" / "ClueAI--ChatYuan-large" / "snapshots" / "master"
    assert f"pulled ClueAI/ChatYuan-large into {folder}" in err
    # the client's own bars (one per file, one for the count) and its INFO lines would be drawn over zhbench's
    assert "Downloading" not in err and "file/s" not in err and "INFO" not in err and "\x1b[A" not in err
    assert main(["rm", "ClueAI/ChatYuan-large", "--yes"]) == 0
    assert not folder.exists()


def test_rm_without_an_answer_removes_nothing(fake_hub: FakeHub, capsys, monkeypatch):  # noqa: F811
    assert main(["pull", REPO]) == 0

    def closed(prompt: str) -> str:
        raise EOFError

    monkeypatch.setattr("builtins.input", closed)
    monkeypatch.setattr("sys.stdin.isatty", lambda: True)
    assert main(["rm", REPO]) == 1
    assert "pass --yes" in capsys.readouterr().err


def test_a_repository_of_several_checkpoints_lists_them(fake_hub: FakeHub, repo_folder, tmp_path, capsys):  # noqa: F811
    rwkv = tmp_path / "rwkv"
    rwkv.mkdir()
    for name in ("RWKV-4-Pile-7B-20230109-ctx4096.pth", "RWKV-4-Pile-7B-Instruct-test2-20230209.pth"):
        (rwkv / name).write_bytes(b"\0" * 100)
    fake_hub.repos["BlinkDL/rwkv-4-pile-7b"] = rwkv
    assert main(["pull", "BlinkDL/rwkv-4-pile-7b"]) == 1
    err = capsys.readouterr().err
    assert "holds 2 checkpoints; choose one with --file NAME: RWKV-4-Pile-7B-20230109-ctx4096.pth" in err
    assert main(["pull", "BlinkDL/rwkv-4-pile-7b", "--file", "*Instruct*"]) == 0
    assert "1 files" in capsys.readouterr().err


def test_a_load_that_does_not_fit_is_refused_before_it_starts_unless_forced(standin_dir, capsys, monkeypatch):
    model = str(standin_dir("gpt2-dialogbot"))
    monkeypatch.setattr("zhbench.workbench.session.fit_check.available_ram_bytes", lambda: 100 * 2**20)
    assert main(["ask", "--model", model, "--device", "cpu", "--max-new-tokens", "2", "你好"]) == 1
    err = capsys.readouterr().err
    assert "does not fit: needs about 163 MiB on cpu (float32; weights 2.7 MiB" in err
    assert "100 MiB free; --force to try anyway" in err
    assert main(["ask", "--model", model, "--device", "cpu", "--max-new-tokens", "2", "--force", "--json", "你好"]) == 0
