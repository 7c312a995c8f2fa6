"""``zhbench chat`` saves its session as the app does, ``--resume`` and ``ask --session`` go on with one, and
the chat's own commands are answered by the chat, never sent to the model (issue 27 item 3)."""

from __future__ import annotations

import io
import json
import shutil
import sys
from pathlib import Path

import pytest

from zhbench.workbench.cli import main
from zhbench.workbench.session.records import MessageRecord
from zhbench.workbench.session.transcripts import read_session, session_files


def transcripts(user_dirs: dict[str, Path]) -> Path:
    return user_dirs["data"] / "zhbench" / "transcripts"


def chat(capsys, monkeypatch, typed: str, *argv: str) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(typed.encode()), encoding="utf-8"))
    code = main(["chat", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def messages(path: Path, role: str) -> list[MessageRecord]:
    return [m for m in read_session(path).messages if m.role == role]


@pytest.fixture
def model(standin_dir) -> list[str]:
    return ["--model", str(standin_dir("gpt2-dialogbot")), "--max-new-tokens", "2", "--seed", "1"]


def test_chat_saves_its_session_and_resume_goes_on_in_the_same_file(capsys, monkeypatch, user_dirs, model):
    code, out, err = chat(capsys, monkeypatch, "你好\n", *model)
    assert code == 0, err
    (path,) = session_files(transcripts(user_dirs))
    assert f"zhbench chat --resume {path.stem}" in err
    assert [m.content for m in messages(path, "user")] == ["你好"]
    (first_reply,) = messages(path, "assistant")

    code, out, err = chat(capsys, monkeypatch, "再见\n", "--resume")  # the latest, with its own model
    assert code == 0, err
    assert f"user> 你好\nbot> {first_reply.content}\n" in out  # the conversation so far, shown first
    assert session_files(transcripts(user_dirs)) == [path]
    assert [(m.turn, m.content) for m in messages(path, "user")] == [(1, "你好"), (2, "再见")]
    assert len(messages(path, "assistant")) == 2

    code, out, err = chat(capsys, monkeypatch, "还在吗\n", "--resume", path.stem[:15])
    assert code == 0, err
    assert [m.turn for m in messages(path, "user")] == [1, 2, 3]


def test_ask_session_adds_one_exchange(capsys, monkeypatch, user_dirs, model):
    chat(capsys, monkeypatch, "你好\n", *model)
    (path,) = session_files(transcripts(user_dirs))
    assert main(["ask", "--session", path.stem, "--json", "第二句"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert (shown["session"], shown["pane"], shown["family"]) == (path.stem, "a", "gpt2-dialogbot")
    replies = messages(path, "assistant")
    assert [m.content for m in messages(path, "user")] == ["你好", "第二句"]
    assert replies[-1].content == shown["reply"] and replies[-1].turn == 2
    assert main(["ask", "--session", "latest", *model[:2], "第三句"]) == 1
    assert "give no --model" in capsys.readouterr().err


def test_the_chat_commands_are_answered_and_never_sent(capsys, monkeypatch, user_dirs, model):
    typed = "/nonsense\n//斜杠开头\n第一行\\\n第二行\n/reset\n/save\n/exit\n不会发送\n"
    code, out, err = chat(capsys, monkeypatch, typed, *model)
    assert code == 0, err
    assert "(unknown command /nonsense: /help lists them" in out
    assert out.count("bot> ") == 2
    (path,) = session_files(transcripts(user_dirs))
    assert [m.content for m in messages(path, "user")] == ["/斜杠开头", "第一行\n第二行"]
    assert "(conversation cleared)" in out
    exported = user_dirs["data"] / "zhbench" / "exports"
    assert sorted(p.name for p in exported.iterdir()) == [f"{path.stem}.json", f"{path.stem}.md"]
    assert "不会发送" not in path.read_text(encoding="utf-8")  # /exit ended the chat


def test_system_sets_the_system_prompt_of_the_next_replies(capsys, monkeypatch, user_dirs, standin_dir):
    argv = ["--model", str(standin_dir("chat-template")), "--max-new-tokens", "2", "--seed", "1"]
    code, out, err = chat(capsys, monkeypatch, "/system 你是一位诗人\n你好\n", *argv)
    assert code == 0, err
    assert "(system prompt set)" in out
    (path,) = session_files(transcripts(user_dirs))
    (reply,) = messages(path, "assistant")
    assert reply.params is not None and reply.params["system_prompt"] == "你是一位诗人"
    code, out, err = chat(capsys, monkeypatch, "/system 诗人\n", "--model", str(standin_dir("gpt2-dialogbot")))
    assert "has no system prompt" in out


def test_the_models_own_commands_still_go_to_the_model(capsys, monkeypatch, user_dirs, standin_dir):
    argv = ["--model", str(standin_dir("rwkv4")), "--max-new-tokens", "2", "--seed", "1"]
    code, out, err = chat(capsys, monkeypatch, "+reset\n你好\n", *argv)
    assert code == 0, err
    assert out.count("bot> ") == 2
    (path,) = session_files(transcripts(user_dirs))
    assert [m.content for m in messages(path, "user")] == ["+reset", "你好"]


def test_resuming_without_the_model_or_an_arena_round_is_one_clear_line(
    capsys, monkeypatch, user_dirs, standin_dir, tmp_path
):
    moved = tmp_path / "model"
    shutil.copytree(standin_dir("gpt2-dialogbot"), moved)
    chat(capsys, monkeypatch, "你好\n", "--model", str(moved), "--max-new-tokens", "2")
    shutil.rmtree(moved)
    code, _, err = chat(capsys, monkeypatch, "再见\n", "--resume")
    assert code == 1
    assert f"{moved} is no longer on this machine" in err
    assert "zhbench: error: none of the models of" in err
    (path,) = session_files(transcripts(user_dirs))
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace('"type": "session",', '"type": "session", "arena": true,', 1), encoding="utf-8")
    code, _, err = chat(capsys, monkeypatch, "再见\n", "--resume")
    assert code == 1 and "is an arena round" in err


def test_ask_session_asks_every_pane_of_an_app_session(capsys, user_dirs, standin_dir):
    from zhbench.engines.registry import load_engine
    from zhbench.workbench.session.bench import Bench

    bench = Bench(transcripts(user_dirs))
    for name, family in (("a", "gpt2-dialogbot"), ("b", "dialogpt-zh")):
        generation = bench.begin_load(name, family)
        assert generation is not None
        bench.model_loaded(name, generation, load_engine(str(standin_dir(family)), device="cpu"), demo=False)
        bench.pane(name).params = bench.pane(name).params.with_overrides({"max_new_tokens": 2})  # type: ignore[union-attr]
    for job in bench.send("你好", bench.names):
        bench.reply_finished(job.pane, job.generation, job.engine.reply(job.history, job.params))
    assert bench.transcript is not None
    bench.transcript.close()
    assert main(["ask", "--session", "latest", "--json", "然后呢"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert [(reply["pane"], reply["family"]) for reply in shown] == [("a", "gpt2-dialogbot"), ("b", "dialogpt-zh")]
    session = read_session(bench.transcript.path)
    assert [(m.pane, m.turn) for m in session.messages if m.role == "user"][-2:] == [("a", 2), ("b", 2)]
    replies = [m for m in session.messages if m.role == "assistant" and m.turn == 2]
    assert [m.params["max_new_tokens"] for m in replies] == [2, 2]  # each pane's own settings, kept


def test_ask_session_takes_the_decoding_options_given(capsys, monkeypatch, user_dirs, standin_dir):
    model = ["--model", str(standin_dir("gpt2-dialogbot")), "--max-new-tokens", "8", "--seed", "1"]
    chat(capsys, monkeypatch, "你好\n", *model)
    argv = ["ask", "--session", "latest", "--json", "--max-new-tokens", "1", "--seed", "7", "--temperature", "0.3"]
    assert main([*argv, "第二句"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert (shown["params"]["max_new_tokens"], shown["params"]["seed"]) == (1, 7)
    assert shown["params"]["temperature"] == 0.3
    assert main(["ask", "--session", "latest", "--temperature", "-2", "第三句"]) == 1
    assert "temperature" in capsys.readouterr().err


def test_ask_session_asks_a_pane_added_during_the_session_and_not_one_taken_away(capsys, user_dirs, standin_dir):
    from zhbench.engines.registry import load_engine
    from zhbench.workbench.session.bench import Bench

    bench = Bench(transcripts(user_dirs))
    assert bench.add_pane() == "c" and bench.add_pane() == "d"  # added in the app, as its palette does
    for name, family in (("a", "gpt2-dialogbot"), ("c", "dialogpt-zh"), ("d", "gpt2-dialogbot")):
        generation = bench.begin_load(name, family)
        assert generation is not None
        bench.model_loaded(name, generation, load_engine(str(standin_dir(family)), device="cpu"), demo=False)
        bench.pane(name).params = bench.pane(name).params.with_overrides({"max_new_tokens": 2})  # type: ignore[union-attr]
    for job in bench.send("你好", bench.names):
        bench.reply_finished(job.pane, job.generation, job.engine.reply(job.history, job.params))
    assert bench.remove_pane() == "d"
    assert bench.transcript is not None
    bench.transcript.close()
    assert main(["ask", "--session", "latest", "--json", "然后呢"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert [(reply["pane"], reply["family"]) for reply in shown] == [("a", "gpt2-dialogbot"), ("c", "dialogpt-zh")]
