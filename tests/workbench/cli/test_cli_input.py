"""What ``prompt``, ``ask`` and ``chat`` read (issue 18, items 12, 20 and 27): hostile input is one clear line,
never a traceback, and a chat keeps its conversation."""

from __future__ import annotations

import io
import sys

import pytest

from zhbench.workbench.cli import main


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def one_error_line(err: str, message: str) -> None:
    assert message in err
    assert err.count("\n") == 1 and err.startswith("zhbench: error: ")
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("history", "message"),
    [
        ('[{"role": "user", "content": "a\\ud800b"}]', "h.json: message 0 is not valid Unicode text"),
        ("[" * 100_000 + "]" * 100_000, "h.json: not a history (its JSON is nested too deeply)"),
    ],
    ids=["lone-surrogate", "deep-nesting"],
)
@pytest.mark.parametrize("command", ["prompt", "ask"])
def test_a_hostile_history_is_one_clear_line(capsys, standin_dir, tmp_path, command, history, message):
    (tmp_path / "h.json").write_text(history, encoding="utf-8")
    argv = [command, "--model", str(standin_dir("gpt2-dialogbot")), "--history", str(tmp_path / "h.json")]
    code, out, err = run(capsys, *argv, *(["hi"] if command == "ask" else []))
    assert code == 1 and out == ""
    one_error_line(err, message)


@pytest.mark.parametrize("option", [[], ["--system", "好\udcff"]])
def test_text_that_was_not_utf8_on_the_command_line_is_refused(capsys, standin_dir, option):
    """Python turns argv bytes that are not UTF-8 into lone surrogates (``surrogateescape``)."""
    text = "hi" if option else "你\udcff好"
    code, out, err = run(capsys, "ask", "--model", str(standin_dir("chat-template")), *option, text)
    assert code == 1 and out == ""
    one_error_line(err, f"{'--system' if option else 'TEXT'} is not valid UTF-8 text")


@pytest.mark.parametrize("command", ["prompt", "ask"])
def test_the_history_is_checked_before_the_model_loads(capsys, tmp_path, monkeypatch, command):
    (tmp_path / "h.json").write_text("[{", encoding="utf-8")

    def no_loading(*_: object, **__: object) -> None:
        raise AssertionError("the model was loaded before the history was read")

    monkeypatch.setattr("zhbench.workbench.cli.chat.load", no_loading)
    argv = [command, "--model", str(tmp_path / "model"), "--history", str(tmp_path / "h.json")]
    code, _, err = run(capsys, *argv, *(["hi"] if command == "ask" else []))
    assert code == 1
    one_error_line(err, "h.json: not valid JSON")


def chat_with(capsys, monkeypatch, model, typed: bytes):
    """``chat`` reading ``typed`` from a strict UTF-8 stdin, as a terminal in a UTF-8 locale gives it."""
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(typed), encoding="utf-8", errors="strict"))
    return run(capsys, "chat", "--model", str(model), "--max-new-tokens", "2", "--seed", "1")


def test_chat_skips_a_line_that_is_not_utf8_and_keeps_the_conversation(capsys, monkeypatch, standin_dir):
    typed = "你好\n".encode() + b"\xff\xfe\n" + "再见\n".encode()  # the middle line is not UTF-8
    code, out, err = chat_with(capsys, monkeypatch, standin_dir("gpt2-dialogbot"), typed)
    assert code == 0, err
    assert "(not sent: that line is not valid UTF-8 text)" in out
    assert out.count("bot> ") == 2  # both good lines were answered
    assert out.endswith("user> \n")  # Ctrl+D (end of input) leaves the shell's prompt on a line of its own


def test_chat_answers_help_itself(capsys, monkeypatch, standin_dir):
    code, out, _ = chat_with(capsys, monkeypatch, standin_dir("rwkv4"), b"/help\n")
    assert code == 0
    assert "bot> " not in out  # not sent to the model
    assert "Commands: /help (list the commands) · /reset (clear the conversation)" in out
    assert out.count("+reset (start the chat again") == 2  # the model's own, in the banner and in /help



def test_a_history_with_a_lone_surrogate_is_refused_by_the_engine_too(engine_for):
    from zhbench.engines.errors import HistoryError

    with pytest.raises(HistoryError, match="message 1 is not valid Unicode text"):
        engine_for("chatyuan").prompt_for([{"role": "user", "content": "a"}, {"role": "user", "content": "\ud800"}])
