"""The app writes its config only when the person changes something (issue 18, item 25)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from zhbench.workbench.app import ZhbenchApp
from zhbench.workbench.session.config import load_config

SIZE = (150, 40)


@pytest.mark.parametrize(
    "text",
    ["theme = 5\n", 'theme = "no-such-theme"\n', 'theme = "zhbench-light"\n', "theme = [\n", "# nothing set\n"],
)
async def test_starting_the_app_leaves_the_config_file_alone(
    make_app: Callable[..., ZhbenchApp], tmp_path: Path, text: str
) -> None:
    config_file = tmp_path / "config.toml"
    config_file.write_text(text, encoding="utf-8")
    app = make_app(config=load_config(config_file))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.pause(0.1)  # the theme-changed signal of the start comes a moment after mount
        messages = [n.message for n in app._notifications]
    assert config_file.read_text(encoding="utf-8") == text
    assert not any("theme not saved" in m for m in messages)


async def test_a_switch_is_still_remembered_after_an_unknown_theme(
    make_app: Callable[..., ZhbenchApp], tmp_path: Path
) -> None:
    config_file = tmp_path / "config.toml"
    config_file.write_text('theme = "no-such-theme"\n', encoding="utf-8")
    app = make_app(config=load_config(config_file))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        app.theme = "zhbench-light"
        await pilot.pause()
        app.theme = "zhbench-dark"  # back to the one in effect at start: a switch too
        await pilot.pause()
    assert config_file.read_text(encoding="utf-8") == 'theme = "zhbench-dark"\n'
