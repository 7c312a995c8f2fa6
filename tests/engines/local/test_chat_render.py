"""A hostile chat template is one clear line naming the model and the template, within the limits: it never
hangs, floods memory or ends in a traceback (issue 26 §3, chat templates)."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from zhbench.engines.errors import GenerationError, ZhbenchError
from zhbench.engines.local.chat_render import ChatTemplate, ChatTemplateError, RenderLimits, set_render_limits
from zhbench.engines.registry import load_engine
from zhbench.workbench.cli import main

QUESTION = [{"role": "user", "content": "你好"}]
TIGHT = RenderLimits(seconds=0.5, max_chars=1_000_000)

#: each kind of template that failed (a hang, a flood, a traceback), and what its one line says
HOSTILE = {
    "nested loops": ("{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}", "after 0.5 s"),
    "200 MB written": ("{% for i in range(100000) %}{{ 'x' * 2000 }}{% endfor %}", "more than 1,000,000 characters"),
    "one huge product": ("{{ 'x' * 200000000 }}", "more than 1,000,000 characters"),
    "a doubling join": (
        "{% set ns = namespace(s='x') %}{% for i in range(40) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s }}",
        "more than 1,000,000 characters",
    ),
    "a huge power": ("{{ 2 ** 100000000 }}", "more than 1,000,000 characters"),
    "raise_exception": ("{{ raise_exception('Conversation roles must alternate') }}", "refused the conversation"),
    "a syntax error": ("{% for m in %}", "does not compile at line 1"),
    "a sandbox violation": ("{{ ''.__class__.__mro__ }}", "sandbox forbids"),
    "include": ("{% include 'other.jinja' %}", "no loader"),
    "import": ("{% import 'other.jinja' as other %}", "no loader"),
    "an undefined chain": ("{{ nothing.at.all }}", "reads something undefined"),
    "endless macro recursion": ("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}", "calls itself without end"),
    "an underscore namespace": ("{% set ns = namespace(_x=1) %}", "sandbox forbids"),
    "nested 100k deep": ("{{" + "(" * 100_000 + "1" + ")" * 100_000 + "}}", "calls itself without end"),
}


@pytest.mark.parametrize("case", HOSTILE, ids=str)
def test_a_hostile_template_is_one_line_naming_it_within_the_limits(case: str) -> None:
    source, said = HOSTILE[case]
    started = time.monotonic()
    with pytest.raises(ChatTemplateError) as raised:
        ChatTemplate(source, model="/models/evil", origin="chat_template.jinja").render(QUESTION, limits=TIGHT)
    message = str(raised.value)
    assert time.monotonic() - started < 3
    assert message.startswith("/models/evil: its chat template (chat_template.jinja) ") and said in message
    assert "\n" not in message and "Traceback" not in message


def test_the_limits_come_from_the_process_settings_and_a_fair_template_renders() -> None:
    chatml = "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}"
    assert ChatTemplate(chatml, model="m", origin="o").render(QUESTION) == "<|im_start|>user\n你好<|im_end|>\n"
    with pytest.raises(ValueError):
        RenderLimits(seconds=0)


def test_a_model_whose_template_hangs_answers_with_one_line_and_a_broken_one_does_not_load(
    standin_dir: Callable[..., Path], tmp_path: Path
) -> None:
    folder = tmp_path / "tiny-hostile"
    shutil.copytree(standin_dir("chat-template"), folder)
    (folder / "chat_template.jinja").write_text(HOSTILE["nested loops"][0], encoding="utf-8")
    engine = load_engine(str(folder), device="cpu")
    set_render_limits(TIGHT)
    try:
        started = time.monotonic()
        with pytest.raises(GenerationError) as raised:
            engine.reply(QUESTION)
        assert time.monotonic() - started < 5
    finally:
        set_render_limits(RenderLimits())
    assert f"{folder}: its chat template (chat_template.jinja) was still rendering after 0.5 s" in str(raised.value)
    assert "ChatTemplateError" not in str(raised.value)

    (folder / "chat_template.jinja").write_text("{% if %}", encoding="utf-8")
    with pytest.raises(ZhbenchError, match=r"its chat template \(chat_template.jinja\) does not compile at line 1"):
        load_engine(str(folder), device="cpu")


def test_zhbench_prompt_on_a_template_that_refuses_is_one_line(
    standin_dir: Callable[..., Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """It was a jinja2 traceback: the CLI's error line knows zhbench's errors, not the template engine's."""
    folder = tmp_path / "tiny-refuses"
    shutil.copytree(standin_dir("chat-template"), folder)
    (folder / "chat_template.jinja").write_text(HOSTILE["raise_exception"][0], encoding="utf-8")
    history = tmp_path / "history.json"
    history.write_text('[{"role": "user", "content": "你好"}]', encoding="utf-8")
    assert main(["prompt", "--model", str(folder), "--history", str(history)]) == 1
    err = capsys.readouterr().err
    said = "refused the conversation at line 1: Conversation roles must alternate"
    assert err == f"zhbench: error: {folder}: its chat template (chat_template.jinja) {said}\n"
