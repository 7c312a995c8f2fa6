"""What a newcomer tried first (issue 18, items 5, 6 and 12): the version, the families ``make-tiny``
writes, a stand-in written without warnings, the model list, the seed a reply drew."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from zhbench.workbench.cli import main


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_version(capsys):
    from importlib.metadata import version

    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out == f"zhbench {version('zhbench')}\n"


def test_make_tiny_help_lists_the_families_it_can_write(capsys):
    from zhbench.engines.registry import families

    with pytest.raises(SystemExit):
        main(["make-tiny", "--help"])
    listed = capsys.readouterr().out.split("families (and their weight formats")[1]
    for name, spec in families().items():
        assert (f"\n  {name} " in listed) == (spec.standin is not None)


def test_make_tiny_refuses_a_folder_that_holds_files_without_force(capsys, tmp_path):
    (tmp_path / "notes.txt").write_text("mine", encoding="utf-8")
    code, out, err = run(capsys, "make-tiny", "chatyuan", str(tmp_path))
    assert code == 1 and out == ""
    assert err == f"zhbench: error: {tmp_path} is not empty: give --force to write the stand-in into it anyway\n"
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]
    code, _, _ = run(capsys, "make-tiny", "chatyuan", str(tmp_path), "--force")
    assert code == 0 and (tmp_path / "config.json").is_file() and (tmp_path / "notes.txt").is_file()


@pytest.mark.slow
@pytest.mark.parametrize("family", ["gpt2-dialogbot", "dialogpt-zh"])
def test_gpt2_stand_ins_are_written_without_a_warning(tmp_path, family):
    """transformers warned that bos/eos 50256 lie outside a stand-in's vocabulary (once a process: so a
    fresh one, as a person runs it)."""
    command = [sys.executable, "-m", "zhbench", "make-tiny", family, str(tmp_path / "m")]
    made = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert (made.returncode, made.stderr) == (0, "")
    assert made.stdout == f"wrote a tiny random-weight {family} stand-in to {tmp_path / 'm'}\n"


def test_ask_shows_the_seed_it_drew(capsys, standin_dir):
    model = str(standin_dir("gpt2-dialogbot"))
    code, out, err = run(capsys, "ask", "--model", model, "--max-new-tokens", "3", "你好")
    assert code == 0
    drawn = int(err.rsplit(" · seed ", 1)[1].rstrip("]\n"))
    code, again, err = run(capsys, "ask", "--model", model, "--max-new-tokens", "3", "--seed", str(drawn), "你好")
    assert (code, again) == (0, out) and err.endswith(f" · seed {drawn}]\n")  # the same reply, from the seed shown
    code, out, _ = run(capsys, "ask", "--model", model, "--max-new-tokens", "3", "--json", "你好")
    assert set(json.loads(out)) == {"family", "reply", "output_ids", "params", "stats"}  # --json keeps its shape


def test_models_shows_what_the_catalog_knows_and_the_demos(capsys):
    code, out, _ = run(capsys, "models")
    assert code == 0
    lines = {line.split()[1]: line for line in out.splitlines()[1:]}
    assert out.splitlines()[0].split() == [
        "FAMILY", "MODEL", "PARAMS", "QUANT", "LICENCE", "MODELSCOPE", "ON", "DISK", "MEMORY", "WHERE"
    ]
    chatyuan = lines["ClueAI/ChatYuan-large-v1"].split()
    assert chatyuan[2:5] == ["783M", "?", "ClueAI/ChatYuan-large"]  # licence not confirmed: left to the card
    assert lines["Qwen/Qwen2.5-7B-Instruct"].split()[2:6] == ["7.6B", "apache-2.0", "same", "id"]
    assert lines["shibing624/gpt2-dialogbot-base-chinese"].split()[2:5] == ["81M", "apache-2.0", "—"]
    assert {"demo:gpt2-dialogbot", "demo:chatyuan"} <= set(lines)  # as the app lists them
    assert "random weights" in lines["demo:chatyuan"]
    code, out, _ = run(capsys, "models", "--json")
    assert not any(row["id"].startswith("demo:") for row in json.loads(out))  # --json keeps its rows
