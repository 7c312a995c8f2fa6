"""The TOML config: wrong values are named and replaced by defaults; the theme is remembered in place."""

from __future__ import annotations

from pathlib import Path

from workbench.session.config import DEFAULT_THEME, load_config, remember_theme


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
