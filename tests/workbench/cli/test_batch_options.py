"""``zhbench batch`` takes the loading options ``ask`` takes (for every --model), runs a subset of a set
(--limit, --category, --ids), and lists the built-in sets' categories (issue 25 item 13)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from tests.engines.remote.fake_server import FakeServer, serve
from zhbench.workbench.cli import main
from zhbench.workbench.session.batch.store import read_run

FAST = ("--set", "max_new_tokens=4")


def run(capsys, *argv):
    code = main([str(arg) for arg in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def fake_server() -> Iterator[FakeServer]:
    yield from serve(FakeServer(models=["tiny-chat", "tiny-chat-2"]))


@pytest.fixture
def prompts(tmp_path):
    path = tmp_path / "prompts.jsonl"
    rows = [{"id": f"chat{n}", "prompt": f"第{n}个问题：你好吗？", "category": "闲聊"} for n in range(3)]
    rows += [{"id": f"math{n}", "prompt": f"{n}加{n}等于几？", "category": "数学"} for n in range(3)]
    rows.append({"id": "plain", "prompt": "你是谁？"})
    path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")
    return path


def test_list_builtin_names_each_category_and_its_count(capsys) -> None:
    code, out, _ = run(capsys, "batch", "--list-builtin")
    assert code == 0 and out.startswith("zh-basic: 80 items\n")
    assert "   10  数学\n" in out and "   10  安全/拒答\n" in out


@pytest.mark.parametrize(
    ("subset", "expected"),
    [
        (("--limit", "2"), {"chat0", "chat1"}),
        (("--category", "数学"), {"math0", "math1", "math2"}),
        (("--category", "数学", "--category", "-", "--limit", "3"), {"math0", "math1", "math2"}),
        (("--category", "-"), {"plain"}),
        (("--ids", "math2,chat1", "--ids", "plain"), {"chat1", "math2", "plain"}),
    ],
)
def test_a_subset_of_the_set_is_run(capsys, tmp_path, prompts, standin_dir, subset, expected) -> None:
    out = tmp_path / "run"
    code, _, err = run(capsys, "batch", prompts, "--model", standin_dir("gpt2-dialogbot"), "--out", out, *subset, *FAST)
    assert code == 0, err
    assert {item.id for item in read_run(out).settings.items} == expected
    assert {key[1] for key in read_run(out).answered()} == expected


@pytest.mark.parametrize(
    ("subset", "message"),
    [
        (("--category", "诗歌"), "has no category '诗歌' (it has: 闲聊, 数学, -)"),
        (("--ids", "nope"), "has no item 'nope'"),
        (("--limit", "0"), "--limit takes 1 or more"),
    ],
)
def test_a_subset_that_names_nothing_is_one_line(capsys, prompts, standin_dir, subset, message) -> None:
    code, _, err = run(capsys, "batch", prompts, "--model", standin_dir("gpt2-dialogbot"), *subset)
    assert code == 1 and message in err and len(err.splitlines()) == 1


def test_local_loading_options_go_to_every_model(capsys, tmp_path, prompts, standin_dir) -> None:
    out = tmp_path / "run"
    models = standin_dir("gpt2-dialogbot"), standin_dir("dialogpt-zh")
    argv = ["batch", prompts, "--model", models[0], "--model", models[1], "--out", out, "--limit", "1"]
    code, _, err = run(capsys, *argv, "--device", "cpu", "--dtype", "bfloat16", *FAST)
    assert code == 0, err
    panes = read_run(out).models
    assert {(pane.device, pane.dtype) for pane in panes.values()} == {("cpu", "bfloat16")} and len(panes) == 2
    code, _, err = run(capsys, *argv, "--out", tmp_path / "other", "--family", "chatyuan", *FAST)
    assert code == 1 and err.count("could not run") == 2  # the family forced on both: neither is a ChatYuan


def test_server_options_reach_the_server(capsys, tmp_path, prompts, fake_server, monkeypatch) -> None:
    monkeypatch.setenv("ZH_BATCH_KEY", "sk-batch-secret-42")
    out = tmp_path / "run"
    code, _, err = run(
        capsys,
        "batch",
        prompts,
        "--base-url",
        fake_server.url,
        "--api-key-env",
        "ZH_BATCH_KEY",
        "--model",
        "tiny-chat",
        "--model",
        "tiny-chat-2",
        "--limit",
        "2",
        "--out",
        out,
    )
    assert code == 0, err
    assert sorted(request["model"] for request in fake_server.requests) == ["tiny-chat"] * 2 + ["tiny-chat-2"] * 2
    assert len(fake_server.headers) >= 4  # each model listed once, then each answer
    assert all(headers.get("Authorization") == "Bearer sk-batch-secret-42" for headers in fake_server.headers)
    assert len(read_run(out).answered()) == 4
    code, _, err = run(capsys, "batch", prompts, "--api-key-env", "ZH_BATCH_KEY", "--model", "tiny-chat")
    assert code == 1 and "--api-key-env goes with --base-url" in err
