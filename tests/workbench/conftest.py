"""Fixtures for driving the real app headless, with its files in a temporary place."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from zhbench.workbench.app import ZhbenchApp
from zhbench.workbench.session.config import Config


@pytest.fixture(autouse=True)
def user_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    """platformdirs' data, config and cache dirs, per test (Linux honours the XDG variables)."""
    dirs = {name: tmp_path / name for name in ("data", "config", "cache")}
    monkeypatch.setenv("XDG_DATA_HOME", str(dirs["data"]))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(dirs["config"]))
    monkeypatch.setenv("XDG_CACHE_HOME", str(dirs["cache"]))
    return dirs


@pytest.fixture
def make_app(tmp_path: Path) -> Callable[..., ZhbenchApp]:
    def make(**options: Any) -> ZhbenchApp:
        options.setdefault("config", Config(path=tmp_path / "config.toml"))
        options.setdefault("transcripts_folder", tmp_path / "transcripts")
        options.setdefault("offer_demos", False)
        return ZhbenchApp(**options)

    return make
