"""Every CLI command and its error lines, run in-process (and the installed script once)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from zhbench.workbench.cli import main


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_models_lists_the_catalog_and_local_models(capsys, standin_dir):
    folder = standin_dir("chatyuan").parent
    code, out, _ = run(capsys, "models", "--json", "--dir", str(folder))
    rows = json.loads(out)
    assert code == 0
    families = {row["family"] for row in rows if row["path"] is None}
    assert families == {"rwkv4", "eva2", "gpt2-dialogbot", "dialogpt-zh", "promptclue", "chatyuan", "chat-template"}
    assert all({"id", "family", "path"} <= set(row) for row in rows)
    local = [row for row in rows if row["path"] == str(standin_dir("chatyuan"))]
    assert local and local[0]["family"] == "chatyuan" and local[0]["size_bytes"] > 0
    code, out, _ = run(capsys, "models")
    assert "ClueAI/ChatYuan-large-v1" in out and "not downloaded" in out



def test_models_lists_the_config_model_dirs_as_the_app_does(capsys, standin_dir, user_dirs):
    folder = standin_dir("chatyuan").parent
    config = user_dirs["config"] / "zhbench" / "config.toml"
    config.parent.mkdir(parents=True)
    config.write_text(f"model_dirs = [{json.dumps(str(folder))}]\n", encoding="utf-8")
    code, out, _ = run(capsys, "models", "--json")
    assert code == 0
    assert str(standin_dir("chatyuan")) in {row["path"] for row in json.loads(out)}

def test_current_models_are_listed_and_found_in_the_modelscope_cache(capsys, standin_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("MODELSCOPE_CACHE", str(tmp_path / "ms"))
    # ModelScope writes the dots of a name as ___
    shutil.copytree(standin_dir("chat-template"), tmp_path / "ms" / "models" / "Qwen" / "Qwen2___5-0___5B-Instruct")
    code, out, _ = run(capsys, "models", "--json")
    rows = {row["id"]: row for row in json.loads(out)}
    assert code == 0
    qwen = rows["Qwen/Qwen2.5-0.5B-Instruct"]
    assert qwen["family"] == "chat-template" and qwen["source"] == "catalog"
    assert qwen["path"] == str(tmp_path / "ms" / "models" / "Qwen" / "Qwen2___5-0___5B-Instruct")
    assert qwen["modelscope_id"] == "Qwen/Qwen2.5-0.5B-Instruct" and qwen["parameters"] == 490_000_000
    assert rows["THUDM/GLM-4-9B-0414"]["path"] is None  # dimmed: not on this machine
    assert rows["openbmb/MiniCPM3-4B"]["licence"] is None  # not confirmed here: left to the card


def test_prompt_json(capsys, standin_dir, tmp_path):
    history = tmp_path / "h.json"
    history.write_text(json.dumps([{"role": "user", "content": "你好\n世界"}], ensure_ascii=False), encoding="utf-8")
    code, out, _ = run(capsys, "prompt", "--model", str(standin_dir("chatyuan")), "--history", str(history), "--json")
    data = json.loads(out)
    assert code == 0
    assert data["family"] == "chatyuan" and data["text"] == "用户：你好\\n世界\\n小元："
    assert data["input_ids"][-1] == 1  # </s>


def test_ask_json_and_streaming(capsys, standin_dir, tmp_path):
    history = tmp_path / "h.json"
    history.write_text(
        json.dumps([{"role": "user", "content": "你好"}, {"role": "assistant", "content": "你好呀"}]), encoding="utf-8"
    )
    model = str(standin_dir("gpt2-dialogbot"))
    argv = ["ask", "--model", model, "--history", str(history), "--seed", "4", "--max-new-tokens", "9"]
    code, out, _ = run(capsys, *argv, "--json", "今天呢？")
    data = json.loads(out)
    assert code == 0
    assert set(data) == {"family", "reply", "output_ids", "params", "stats"}
    assert set(data["stats"]) >= {"prompt_tokens", "new_tokens", "ttft_s", "tokens_per_s", "stop_reason"}
    assert data["params"]["seed"] == 4 and data["params"]["max_new_tokens"] == 9 and data["params"]["top_k"] == 8
    code, streamed, err = run(capsys, *argv, "今天呢？")
    assert code == 0 and streamed == data["reply"] + "\n"
    assert "tok/s" in err


@pytest.mark.slow
def test_ask_greedy_presets_and_settings(capsys, standin_dir):
    model = str(standin_dir("promptclue"))
    _, out, _ = run(capsys, "ask", "--model", model, "--preset", "sample", "--seed", "1", "--json", "你好")
    params = json.loads(out)["params"]
    assert (params["top_p"], params["max_new_tokens"], params["greedy"]) == (0.8, 63, False)
    _, out, _ = run(capsys, "ask", "--model", model, "--set", "task=summarize", "--greedy", "--json", "文章")
    assert json.loads(out)["params"]["task"] == "summarize"


def test_make_tiny_writes_a_loadable_model(capsys, tmp_path):
    code, out, _ = run(capsys, "make-tiny", "dialogpt-zh", str(tmp_path / "m"), "--weights", "safetensors")
    assert code == 0 and (tmp_path / "m" / "model.safetensors").is_file()
    code, out, _ = run(capsys, "ask", "--model", str(tmp_path / "m"), "--max-new-tokens", "3", "--json", "hi")
    assert json.loads(out)["family"] == "dialogpt-zh"


@pytest.mark.parametrize(
    "setup, argv, message",
    [
        (None, ["ask", "--model", "{tmp}/nope", "hi"], "nope: no such file or folder"),
        ("no-vocab", ["ask", "--model", "{model}", "hi"], "missing tokenizer file vocab.txt"),
        ("bad-weights", ["ask", "--model", "{model}", "hi"], "pytorch_model.bin: unreadable weights"),
        (None, ["ask", "--model", "{model}", "--family", "llama", "hi"], "unknown family 'llama'"),
        ("bad-history", ["prompt", "--model", "{model}", "--history", "{tmp}/h.json"], "h.json: not valid JSON"),
        ("wrong-history", ["prompt", "--model", "{model}", "--history", "{tmp}/h.json"], "h.json: message 0 has role"),
        (None, ["ask", "--model", "{model}", "--set", "temperature=hot", "hi"], "temperature"),
        (None, ["ask", "--model", "{model}", "--preset", "fast", "hi"], "unknown preset 'fast'"),
        (None, ["ask", "--model", "{model}", "--seed", "-3", "hi"], "seed must be a whole number from 0 to 4294967295"),
        (None, ["ask", "--model", "{model}", "--max-new-tokens", "99999999999", "hi"], "max_new_tokens must be"),
        (None, ["make-tiny", "gpt9", "{tmp}/x"], "unknown family 'gpt9'"),
    ],
)
def test_errors_are_one_clear_line(capsys, standin_dir, tmp_path, setup, argv, message):
    model = tmp_path / "model"
    shutil.copytree(standin_dir("gpt2-dialogbot"), model)
    if setup == "no-vocab":
        (model / "vocab.txt").unlink()
    elif setup == "bad-weights":
        (model / "pytorch_model.bin").write_bytes(b"\x00" * 64)
    elif setup == "bad-history":
        (tmp_path / "h.json").write_text("[{", encoding="utf-8")
    elif setup == "wrong-history":
        (tmp_path / "h.json").write_text('[{"role": "system", "content": "x"}]', encoding="utf-8")
    code, out, err = run(capsys, *[a.format(tmp=tmp_path, model=model) for a in argv])
    assert code == 1
    assert message in err
    assert err.count("\n") == 1 and err.startswith("zhbench: error: ")
    assert "Traceback" not in err + out


def test_installed_console_script_runs():
    script = shutil.which("zhbench")
    command = [script] if script else [sys.executable, "-m", "zhbench"]
    result = subprocess.run([*command, "models", "--json"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert any(row["family"] == "chatyuan" for row in json.loads(result.stdout))


def test_a_and_b_belong_to_the_app_not_to_a_command(capsys):
    with pytest.raises(SystemExit) as exited:
        main(["--a", "some/model", "models"])
    assert exited.value.code == 2
    assert "--a, --b and --pane open the app" in capsys.readouterr().err


def test_no_command_opens_the_app_with_the_preloaded_models(monkeypatch):
    import zhbench.workbench.app

    opened = {}

    class RecordingApp:
        return_code = None  # as Textual's App before it has ended on an error

        def __init__(self, **options):
            opened.update(options)

        def run(self):
            opened["ran"] = True

    monkeypatch.setattr(zhbench.workbench.app, "ZhbenchApp", RecordingApp)
    assert main(["--a", "models/甲", "--b", "ClueAI/ChatYuan-large-v1", "--device", "cpu"]) == 0
    assert opened == {"preload": {"a": "models/甲", "b": "ClueAI/ChatYuan-large-v1"}, "device": "cpu", "ran": True}


def test_pane_fills_up_to_four_panes_from_a_and_more_is_one_clear_line(monkeypatch, capsys):
    import zhbench.workbench.app

    opened = {}

    class RecordingApp:
        return_code = None

        def __init__(self, **options):
            opened.update(options)

        def run(self):
            pass

    monkeypatch.setattr(zhbench.workbench.app, "ZhbenchApp", RecordingApp)
    assert main(["--pane", "m1", "--pane", "m2", "--pane", "m3"]) == 0
    assert opened["preload"] == {"a": "m1", "b": "m2", "c": "m3"}
    code, _, err = run(capsys, *["--pane", "m"] * 5)
    assert code == 1 and err == "zhbench: error: at most 4 panes side by side, not 5 (--pane)\n"
    code, _, err = run(capsys, "--a", "m1", "--pane", "m2")
    assert code == 1 and "give every model with --pane, or use --a and --b" in err


def test_an_export_format_added_to_the_registry_is_a_cli_choice_and_written_by_the_apps_export(
    capsys, monkeypatch, tmp_path, user_dirs
):
    """One table per output format (issue 28 item 5): registering a session export format is the only edit
    needed for `zhbench export --format` to take it and for the app's export (Ctrl+S) to write it."""
    from zhbench.workbench.session.output_formats import OutputFormat
    from zhbench.workbench.session.records import MessageRecord, PaneModel
    from zhbench.workbench.session.transcripts import (
        EXPORT_FORMATS,
        TranscriptWriter,
        export_descriptions,
        export_session,
    )

    folder = user_dirs["data"] / "zhbench" / "transcripts"
    writer = TranscriptWriter(folder, {"a": PaneModel("m", "chatyuan", "/m", "cpu", "float32")})
    writer.write(MessageRecord("a-1-user", "a", 1, "user", "你好", "m", "t", to=("a",)))
    writer.close()

    def messages_only(session):
        return "".join(f"{record.content}\n" for record in session.records if isinstance(record, MessageRecord))

    monkeypatch.setitem(EXPORT_FORMATS, "txt", OutputFormat(messages_only, (".txt",), "plain text"))
    assert main(["export", "latest", "--format", "txt", "-o", str(tmp_path / "out.txt")]) == 0
    assert (tmp_path / "out.txt").read_text(encoding="utf-8") == "你好\n"
    paths = export_session(writer.path, tmp_path / "exports")
    assert [path.suffix for path in paths] == [".md", ".json", ".txt"]
    assert paths[-1].read_text(encoding="utf-8") == "你好\n"
    assert export_descriptions() == "Markdown, JSON and plain text"  # the palette's line names it


def test_export_to_a_full_disk_is_one_clear_line(tmp_path):
    """Issue 18, item 21: `export … > /dev/full` ended in a traceback."""
    import subprocess
    import sys

    from zhbench.workbench.session.records import MessageRecord, PaneModel
    from zhbench.workbench.session.transcripts import TranscriptWriter

    env = {**os.environ, "XDG_DATA_HOME": str(tmp_path / "data")}
    folder = tmp_path / "data" / "zhbench" / "transcripts"
    writer = TranscriptWriter(folder, {"a": PaneModel("m", "chatyuan", "/m", "cpu", "float32")})
    writer.write(MessageRecord("a-1-user", "a", 1, "user", "你好" * 5000, "m", "t", to=("a",)))
    writer.close()
    with open("/dev/full", "w") as full:
        command = [sys.executable, "-m", "zhbench", "export", "latest"]
        result = subprocess.run(command, stdout=full, stderr=subprocess.PIPE, text=True, env=env)
    assert result.returncode == 1
    assert result.stderr == "zhbench: error: cannot write to stdout (No space left on device)\n"
