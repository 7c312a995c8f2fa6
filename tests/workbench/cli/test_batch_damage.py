"""Damaged batch input costs only what is damaged (issue 26 §6): an answer whose stats hold wrong types is
reported and skipped by ``batch report``, and a CSV cell over the limit skips its row alone."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from zhbench.workbench.cli import main
from zhbench.workbench.session.batch.prompts import MAX_CSV_CELL, read_prompt_set
from zhbench.workbench.session.batch.store import ANSWERS_FILE, read_run


def _run(capsys: pytest.CaptureFixture[str], *argv: object) -> tuple[int, str, str]:
    code = main([str(arg) for arg in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def answered_run(tmp_path_factory: pytest.TempPathFactory, standin_dir) -> Path:
    """A finished run of three prompts through a tiny stand-in."""
    folder = tmp_path_factory.mktemp("batch")
    prompts = folder / "prompts.txt"
    prompts.write_text("你好\n今天天气怎么样？\n再见\n", encoding="utf-8")
    code = main(
        ["batch", str(prompts), "--model", str(standin_dir("gpt2-dialogbot")), "--out", str(folder / "run"),
         "--seed", "1", "--set", "max_new_tokens=3"]
    )  # fmt: skip
    assert code == 0
    return folder / "run"


@pytest.mark.parametrize(
    "bad",
    [{"new_tokens": "many"}, {"total_s": "slow"}, {"ttft_s": [1]}, {"tokens_per_s": {"a": 1}}, "not stats",
     {"new_tokens": True}, {"total_s": float("inf")}],
)  # fmt: skip
def test_an_answer_with_wrong_stats_is_skipped_and_said(answered_run: Path, tmp_path: Path, bad, capsys) -> None:
    run = tmp_path / "run"
    run.mkdir()
    (run / "run.json").write_bytes((answered_run / "run.json").read_bytes())
    lines = (answered_run / ANSWERS_FILE).read_text(encoding="utf-8").splitlines()
    records = [json.loads(line) for line in lines]
    answer = next(record for record in records if record["type"] == "answer")
    answer["message"]["stats"] = bad if not isinstance(bad, dict) else answer["message"]["stats"] | bad
    (run / ANSWERS_FILE).write_text("".join(json.dumps(record) + "\n" for record in records), encoding="utf-8")

    for form in ("md", "html", "json"):
        code, out, err = _run(capsys, "batch", "report", run, "--format", form)
        assert code == 0, err
        assert "1 damaged line" in out or '"damaged_lines": 1' in out
    assert len(read_run(run).answers) == 2  # the other two answers are all there


def test_a_csv_cell_over_the_limit_skips_its_row_only(tmp_path: Path, standin_dir, capsys) -> None:
    prompts = tmp_path / "prompts.csv"
    long_cell = "长" * 200_000  # 200,000 characters, about 600 KB
    prompts.write_text(f'id,prompt\nq1,你好\nq2,{long_cell}\nq3,再见\nq4,"两行\n的问题"\nq5,谢谢\n', encoding="utf-8")
    found = read_prompt_set(prompts)
    assert [item.id for item in found.items] == ["q1", "q3", "q4", "q5"]
    assert [str(bad) for bad in found.bad_lines] == [f"line 3: a cell of 200,000 characters (at most {MAX_CSV_CELL:,})"]

    out = tmp_path / "run"
    code, _, err = _run(
        capsys, "batch", prompts, "--model", standin_dir("gpt2-dialogbot"), "--out", out, "--skip-bad",
        "--set", "max_new_tokens=2",
    )  # fmt: skip
    assert code == 0, err
    assert "line 3: a cell of 200,000 characters" in err
    assert {key[1] for key in read_run(out).answered()} == {"q1", "q3", "q4", "q5"}


def test_an_out_folder_that_is_a_file_or_fifo_is_one_line(tmp_path: Path, capsys) -> None:
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("你好\n", encoding="utf-8")
    plain, fifo = tmp_path / "a-file", tmp_path / "a-fifo"
    plain.write_text("mine", encoding="utf-8")
    os.mkfifo(fifo)
    for target in (plain, fifo):
        code, _, err = _run(capsys, "batch", prompts, "--model", tmp_path / "no-model", "--out", target)
        assert code == 1 and err.count("\n") == 1 and "not a folder a run can be kept in" in err, err
    assert plain.read_text(encoding="utf-8") == "mine" and stat.S_ISFIFO(fifo.lstat().st_mode)
