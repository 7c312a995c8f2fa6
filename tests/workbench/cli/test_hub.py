"""``zhbench pull``, ``zhbench rm`` and the memory-fit refusal of ``ask``."""

from __future__ import annotations

import json

from tests.engines.hub.conftest import REPO, fake_hub, repo_folder  # noqa: F401  # the fake hub's fixtures
from tests.engines.hub.fake_hub import FakeHub
from workbench.cli import main


def test_pull_then_rm(fake_hub: FakeHub, capsys, monkeypatch):  # noqa: F811
    assert main(["pull", REPO]) == 0
    err = capsys.readouterr().err
    assert f"{REPO} from {fake_hub.url}: 6 files" in err
    assert "not fetched (not needed): " in err and "pytorch_model.bin" in err and "optimizer.pt" in err
    assert f"try it: zhbench chat --model {REPO}" in err

    monkeypatch.setattr("builtins.input", lambda prompt: "n")
    assert main(["rm", REPO]) == 1
    assert "nothing removed" in capsys.readouterr().err
    assert main(["rm", REPO, "--yes"]) == 0
    assert f"removed {REPO}" in capsys.readouterr().err

    assert main(["models", "--json"]) == 0
    rows = {row["id"]: row for row in json.loads(capsys.readouterr().out)}
    assert rows[REPO]["path"] is None
    assert main(["rm", REPO, "--yes"]) == 1
    assert "in neither the Hugging Face nor the ModelScope cache" in capsys.readouterr().err


def test_rm_without_an_answer_removes_nothing(fake_hub: FakeHub, capsys, monkeypatch):  # noqa: F811
    assert main(["pull", REPO]) == 0

    def closed(prompt: str) -> str:
        raise EOFError

    monkeypatch.setattr("builtins.input", closed)
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
    monkeypatch.setattr("workbench.session.fit_check.available_ram_bytes", lambda: 100 * 2**20)
    assert main(["ask", "--model", model, "--device", "cpu", "--max-new-tokens", "2", "你好"]) == 1
    err = capsys.readouterr().err
    assert "does not fit: needs about 0.17 GB on cpu (float32; weights 0.00 GB" in err
    assert "0.10 GB free; --force to try anyway" in err
    assert main(["ask", "--model", model, "--device", "cpu", "--max-new-tokens", "2", "--force", "--json", "你好"]) == 0
