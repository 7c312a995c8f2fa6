"""The TOML config: wrong values are named and replaced by defaults; the theme is remembered in place."""

from __future__ import annotations

from pathlib import Path

import pytest

from zhbench.engines.local.chat_render import RenderLimits
from zhbench.workbench.session.config import DEFAULT_THEME, key_problem, load_config, remember_theme


def test_wrong_values_are_named_and_the_rest_is_kept(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(
        'theme = 1\nmodel_dirs = ["~/models"]\n[keymap]\nstop = 3\n[params.chatyuan]\ntemperature = 0.5\n'
        '[strategy]\n"RWKV-4-Pile-7B.pth" = "cuda fp16i8 *10 -> cuda fp16"\n',
        encoding="utf-8",
    )
    config = load_config(path)
    assert config.theme == DEFAULT_THEME and config.keymap == {}
    assert [p.split(": ", 1)[1] for p in config.problems] == [
        "theme should be a string; ignored",
        'keymap should be a table of binding-id = "keys"; ignored',
    ]
    assert config.model_dirs == [Path("~/models").expanduser()]
    assert config.params == {"chatyuan": {"temperature": 0.5}}
    assert config.strategy_for("/models/RWKV-4-Pile-7B.pth") == "cuda fp16i8 *10 -> cuda fp16"
    assert config.strategy_for("/models/other.pth") is None


def test_remembering_the_theme_keeps_comments_and_tables(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text('# mine\ntheme = "zhbench-dark"  # dark\n\n[keymap]\nstop = "f10"\n', encoding="utf-8")
    assert remember_theme(load_config(path), "zhbench-light") is None
    assert path.read_text(encoding="utf-8") == '# mine\ntheme = "zhbench-light"\n\n[keymap]\nstop = "f10"\n'
    fresh = tmp_path / "new" / "config.toml"
    assert remember_theme(load_config(fresh), "zhbench-light") is None
    assert load_config(fresh).theme == "zhbench-light"


def test_a_file_that_does_not_parse_is_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text("theme = [", encoding="utf-8")
    problem = remember_theme(load_config(path), "zhbench-light")
    assert problem is not None and "theme not saved" in problem
    assert path.read_text(encoding="utf-8") == "theme = ["


def test_a_key_that_cannot_be_bound_is_refused_and_the_default_kept(tmp_path: Path) -> None:
    """Issue 18, item 22: ``stop = "ctrl+"`` was taken, and Esc no longer stopped a reply."""
    path = tmp_path / "config.toml"
    path.write_text(
        '[keymap]\nstop = "ctrl+"\nsend-active = "ctrl+t, f5"\nclear = "ctl+l"\nswap = "f6,"\nsave = "question_mark"\n',
        encoding="utf-8",
    )
    config = load_config(path)
    assert config.keymap == {"send-active": "ctrl+t, f5", "save": "question_mark"}
    assert [p.split(": ", 1)[1] for p in config.problems] == [
        "keymap stop = 'ctrl+': 'ctrl+' names no key; its default key is kept",
        "keymap clear = 'ctl+l': 'ctl' is not a modifier (known: ctrl, shift, alt, meta, super, hyper); "
        "its default key is kept",
        "keymap swap = 'f6,': a key is empty; its default key is kept",
    ]


@pytest.mark.parametrize("keys", ["escape", "ctrl+shift+1", "f10", "a", "?", "alt+left, super+pagedown"])
def test_keys_textual_names_are_taken(keys: str) -> None:
    assert key_problem(keys) is None


@pytest.mark.parametrize("keys", ["", "ctrl+", "+x", "ctrl++", "ctrl+ t", "F10", "cmd+k", "ctrl+t,,f5"])
def test_keys_no_terminal_sends_are_refused(keys: str) -> None:
    assert key_problem(keys) is not None


def test_the_chat_template_limits_are_read_and_wrong_ones_named(tmp_path: Path) -> None:
    """Issue 26 §3: how long a chat template may render and how much it may write are the user's to set."""
    path = tmp_path / "config.toml"
    path.write_text("[chat_template]\ntime_limit = 0.5\nmax_output_mb = 1\n", encoding="utf-8")
    limits = load_config(path).render_limits
    assert (limits.seconds, limits.max_chars) == (0.5, 1_000_000)
    path.write_text("[chat_template]\ntime_limit = -1\n", encoding="utf-8")
    config = load_config(path)
    assert config.render_limits == RenderLimits() and "chat_template should be a table" in config.problems[0]


@pytest.mark.parametrize("value", ["5", "1", "true", '"3"', "2.5"])
def test_a_pane_count_outside_two_to_four_is_one_line_naming_the_file(tmp_path: Path, value: str) -> None:
    path = tmp_path / "config.toml"
    path.write_text(f"panes = {value}\n", encoding="utf-8")
    config = load_config(path)
    assert config.panes == 2 and config.problems == [f"{path}: panes should be a whole number from 2 to 4; ignored"]
    path.write_text("panes = 4\n", encoding="utf-8")
    assert load_config(path).panes == 4 and not load_config(path).problems
