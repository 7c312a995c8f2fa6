"""``zhbench batch`` and ``batch report`` end to end on tiny stand-ins: the answers file, resuming after
kill -9, bad lines refused before any model loads, seeds, failures recorded, the report's three forms."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from zhbench.workbench.cli import main
from zhbench.workbench.session.batch.store import ANSWERS_FILE, read_run

FAST = ("--set", "max_new_tokens=4")


def run(capsys, *argv):
    code = main([str(arg) for arg in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def prompts(tmp_path):
    path = tmp_path / "prompts.jsonl"
    rows = [{"id": f"p{n}", "prompt": f"第{n}个问题：你好吗？", "category": "闲聊"} for n in range(3)]
    rows.append(
        {
            "id": "multi",
            "messages": [
                {"role": "user", "content": "你好"},
                {"role": "assistant", "content": "你好！"},
                {"role": "user", "content": "再见"},
            ],
        }
    )
    path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")
    return path


def answer_lines(folder):
    lines = (folder / ANSWERS_FILE).read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if '"type": "answer"' in line]


def test_two_models_answer_every_item_and_the_report_shows_them(capsys, tmp_path, prompts, standin_dir):
    out = tmp_path / "run"
    gpt2, chatyuan = standin_dir("gpt2-dialogbot"), standin_dir("chatyuan")
    code, stdout, err = run(capsys, "batch", prompts, "--model", gpt2, "--model", chatyuan, "--out", out, *FAST)
    assert code == 0, err
    assert stdout.strip() == str(out)
    assert f"[{gpt2}] finished: 4/4 answered, 0 failed" in err
    records = answer_lines(out)
    assert len(records) == 8 and len({(r["message"]["model"], r["item"]) for r in records}) == 8
    assert all(
        r["message"]["stats"]["new_tokens"] <= 4 and r["message"]["params"]["seed"] == r["seed"] for r in records
    )

    code, stdout, _ = run(capsys, "batch", "report", out, "--format", "json")
    data = json.loads(stdout)
    assert code == 0 and [m["model"] for m in data["models"]] == [str(gpt2), str(chatyuan)]
    assert [m["answers"] for m in data["models"]] == [4, 4] and data["models"][0]["random_weights"]
    multi = next(item for item in data["items"] if item["id"] == "multi")
    assert multi["prompt"] == "再见" and len(multi["messages"]) == 3
    assert {a["model"] for a in multi["answers"]} == {str(gpt2), str(chatyuan)}
    assert {"new_tokens", "ttft_s", "tokens_per_s", "stop_reason"} <= set(multi["answers"][0]["stats"])

    code, _, err = run(capsys, "batch", "report", out, "-o", tmp_path / "report.html")
    page = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert code == 0 and page.startswith("<!DOCTYPE html>") and "第0个问题" in page and "<script" not in page
    code, stdout, _ = run(capsys, "batch", "report", out)
    assert code == 0 and stdout.startswith("# zhbench batch") and "## multi" in stdout


def test_bad_lines_are_refused_by_number_before_any_model_loads(capsys, tmp_path, standin_dir):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"id": "a", "prompt": "你好"}\n{oops\n{"id": "b"}\n', encoding="utf-8")
    out = tmp_path / "run"
    code, _, err = run(capsys, "batch", path, "--model", tmp_path / "no-such-model", "--out", out)
    assert code == 1
    assert f"{path}: line 2: not valid JSON" in err and f'{path}: line 3: no "prompt"' in err
    assert "2 bad lines" in err and "--skip-bad" in err and "no-such-model" not in err
    assert not out.exists()
    code, _, err = run(
        capsys, "batch", path, "--model", standin_dir("gpt2-dialogbot"), "--out", out, "--skip-bad", *FAST
    )
    assert code == 0 and len(answer_lines(out)) == 1


def test_a_model_that_cannot_load_is_recorded_and_the_other_goes_on(capsys, tmp_path, prompts, standin_dir):
    out = tmp_path / "run"
    missing = tmp_path / "missing-model"
    code, _, err = run(
        capsys, "batch", prompts, "--model", missing, "--model", standin_dir("gpt2-dialogbot"), "--out", out, *FAST
    )
    assert code == 1  # something failed: a script can tell
    assert f"[{missing}] could not run: {missing}: no such file or folder" in err
    log = read_run(out)
    assert str(missing) in log.load_failures and len(log.answered()) == 4
    code, stdout, _ = run(capsys, "batch", "report", out, "--format", "md")
    assert "could not run" in stdout


def test_seed_reproduces_a_local_models_answers(capsys, tmp_path, prompts, standin_dir):
    texts = []
    for name in ("first", "second"):
        code, _, err = run(
            capsys,
            "batch",
            prompts,
            "--model",
            standin_dir("gpt2-dialogbot"),
            "--seed",
            11,
            "--repeat",
            2,
            "--out",
            tmp_path / name,
            "--set",
            "max_new_tokens=6",
        )
        assert code == 0, err
        texts.append({(r["item"], r["repeat"]): r["message"]["content"] for r in answer_lines(tmp_path / name)})
    assert texts[0] == texts[1] and len(texts[0]) == 8
    assert len(set(texts[0].values())) > 1  # each item and repeat has its own seed


def test_another_run_into_the_same_folder_is_refused_but_a_new_model_extends_it(capsys, tmp_path, prompts, standin_dir):
    out = tmp_path / "run"
    gpt2 = standin_dir("gpt2-dialogbot")
    assert run(capsys, "batch", prompts, "--model", gpt2, "--out", out, *FAST, "--seed", 1)[0] == 0
    code, _, err = run(capsys, "batch", prompts, "--model", gpt2, "--out", out, *FAST, "--seed", 2)
    assert code == 1 and "holds another run" in err and "seed: 1 recorded, 2 now" in err
    other = standin_dir("gpt2-dialogbot", "safetensors")
    code, _, err = run(capsys, "batch", prompts, "--model", gpt2, "--model", other, "--out", out, *FAST, "--seed", 1)
    assert code == 0 and f"[{gpt2}] 4/4 answered already; nothing left to answer" in err
    assert len(read_run(out).answered()) == 8 and len(answer_lines(out)) == 8


def test_a_larger_limit_adds_only_the_missing_answers_to_the_run(capsys, tmp_path, prompts, standin_dir):
    """A newcomer's `batch --limit 2 --out run` then `--limit 4 --out run` was refused as another run."""
    out, gpt2 = tmp_path / "run", standin_dir("gpt2-dialogbot")
    argv = ("batch", prompts, "--model", gpt2, "--out", out, *FAST, "--seed", 1)
    assert run(capsys, *argv, "--limit", 2)[0] == 0
    first = answer_lines(out)
    code, _, err = run(capsys, *argv, "--limit", 3)
    assert code == 0 and f"[{gpt2}] 2/3 answered already; loading, 1 to answer" in err
    assert answer_lines(out)[:2] == first and [line["item"] for line in answer_lines(out)] == ["p0", "p1", "p2"]
    assert [item.id for item in read_run(out).settings.items] == ["p0", "p1", "p2"]
    changed = prompts.read_text(encoding="utf-8").replace("第1个问题", "第一个问题")
    prompts.write_text(changed, encoding="utf-8")  # the hashes still guard the answers given
    code, _, err = run(capsys, *argv)
    assert code == 1 and "the prompts differ (3 items recorded, 4 now; item 'p1' changed)" in err
    assert len(answer_lines(out)) == 3


def test_the_default_folder_is_named_by_the_set_and_settings(capsys, prompts, standin_dir, user_dirs):
    argv = ("batch", prompts, "--model", standin_dir("gpt2-dialogbot"), *FAST, "--seed", 3)
    code, stdout, _ = run(capsys, *argv)
    folder = stdout.strip()
    assert code == 0 and folder.startswith(str(user_dirs["data"] / "zhbench" / "batches" / "prompts-"))
    code, stdout, err = run(capsys, *argv)  # the same command: the same run, nothing to do
    assert stdout.strip() == folder and "nothing left to answer" in err


def test_rich_progress_on_a_terminal(capsys, monkeypatch, tmp_path, prompts, standin_dir):
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    code, _, err = run(
        capsys, "batch", prompts, "--model", standin_dir("gpt2-dialogbot"), "--out", tmp_path / "r", *FAST
    )
    assert code == 0 and "4/4" in err and "done" in err


@pytest.mark.slow
def test_kill_9_mid_run_then_the_same_command_finishes_with_every_answer_once(capsys, tmp_path, standin_dir):
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("".join(f"请回答第{n}个问题。\n" for n in range(8)), encoding="utf-8")
    out = tmp_path / "run"
    models = [standin_dir("gpt2-dialogbot"), standin_dir("gpt2-dialogbot", "safetensors")]
    argv = [
        "batch",
        str(prompts),
        "--model",
        str(models[0]),
        "--model",
        str(models[1]),
        "--repeat",
        "2",
        "--out",
        str(out),
        "--seed",
        "9",
        "--set",
        "max_new_tokens=12",
    ]
    child = subprocess.Popen(
        [sys.executable, "-m", "zhbench", *argv],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and child.poll() is None:
            if (out / ANSWERS_FILE).exists() and len(answer_lines(out)) >= 5:
                break
            time.sleep(0.05)
        assert child.poll() is None, "the run finished before it could be killed"
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.wait()
    before = {r["message"]["id"] for r in answer_lines(out)}
    assert 5 <= len(before) < 32

    code, _, err = run(capsys, *argv)
    assert code == 0, err
    records = answer_lines(out)
    keys = [(r["message"]["pane"], r["item"], r["repeat"]) for r in records]  # the run's name for each model
    assert len(keys) == len(set(keys)) == 8 * 2 * 2  # every answer exactly once
    assert before <= {r["message"]["id"] for r in records}  # nothing written before the kill was lost
    assert len(read_run(out).answered()) == 32


@pytest.fixture
def judge_server(user_dirs):
    """A fake OpenAI-compatible server configured as ``local``, its judge always preferring answer A."""
    from tests.engines.remote.fake_server import FakeServer, answer, serve, stream

    for fake in serve(FakeServer(models=["judge"], chat=stream(answer("理由：A 更切题。", "[[A]]")))):
        config = user_dirs["config"] / "zhbench" / "config.toml"
        config.parent.mkdir(parents=True, exist_ok=True)
        config.write_text(f'[servers.local]\nbase_url = "{fake.url}"\n', encoding="utf-8")
        yield fake


def test_batch_judge_with_a_server_judge_writes_verdicts_report_and_judge_votes(
    capsys, tmp_path, prompts, standin_dir, judge_server
):
    out = tmp_path / "run"
    gpt2, other = standin_dir("gpt2-dialogbot"), standin_dir("gpt2-dialogbot", "safetensors")
    assert run(capsys, "batch", prompts, "--model", gpt2, "--model", other, "--out", out, *FAST)[0] == 0
    argv = ("batch", "judge", out, "--judge", "local/judge", "--to-votes", "--concurrency", "4", "--greedy")
    code, stdout, err = run(capsys, *argv)
    assert code == 0, err
    assert stdout.strip() == str(out) and len(judge_server.requests) == 8  # 4 items × 2 orders
    assert judge_server.requests[0]["messages"][0]["role"] == "system"  # the built-in prompt's system message
    assert f"{other} vs {gpt2}: win rate 50.0%" in err and "consistent across the swap 0%" in err
    assert "8 new judge votes" in err

    code, stdout, err = run(capsys, *argv)  # again: nothing judged twice, no vote stored twice
    assert code == 0 and len(judge_server.requests) == 8 and "0 new judge votes" in err

    data = json.loads(run(capsys, "batch", "report", out, "--format", "json")[1])
    (judge,) = data["judges"]
    assert judge["judge"] == "local/judge" and len(judge["judgements"]) == 8
    assert judge["results"][0]["ci95"] is not None and judge["judgements"][0]["raw"] == "理由：A 更切题。[[A]]"

    board = json.loads(run(capsys, "leaderboard", "--json", "--bootstrap", "0")[1])
    assert board["battles"] == 0 and board["left_out"]["judge"] == 8
    code, stdout, _ = run(capsys, "leaderboard", "--include-judge", "--bootstrap", "0")
    assert code == 0 and "8 battles" in stdout


def test_a_local_judge_without_a_verdict_is_counted_unparseable(capsys, tmp_path, prompts, standin_dir):
    out = tmp_path / "run"
    gpt2, other = standin_dir("gpt2-dialogbot"), standin_dir("gpt2-dialogbot", "safetensors")
    assert run(capsys, "batch", prompts, "--model", gpt2, "--model", other, "--out", out, *FAST)[0] == 0
    code, _, err = run(capsys, "batch", "judge", out, "--judge", gpt2, "--baseline", other, *FAST)
    assert code == 0, err
    assert f"{gpt2} vs {other}: no verdicts, 0/0/0 W/T/L" in err and "8 unparseable" in err
    code, stdout, _ = run(capsys, "batch", "report", out)
    assert "## Judge:" in stdout and "unparseable (no verdict mark)" in stdout


def test_judge_options_are_refused_where_they_do_not_belong(capsys, tmp_path, prompts, standin_dir):
    code, _, err = run(capsys, "batch", prompts, "--model", "m", "--judge", "j")
    assert code == 1 and "--judge goes with `zhbench batch judge DIR`" in err
    code, _, err = run(capsys, "batch", "judge", tmp_path)
    assert code == 1 and "--judge M" in err
