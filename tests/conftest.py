"""Shared fixtures: tiny random-weight stand-ins of each family, built once per test session."""

from __future__ import annotations

import os

# Set before anything imports rwkv, transformers or huggingface_hub.
os.environ.setdefault("RWKV_JIT_ON", "0")
os.environ.setdefault("RWKV_CUDA_ON", "0")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ["HF_HUB_OFFLINE"] = "1"

from collections.abc import Callable
from pathlib import Path

import pytest

from engines.base import Engine
from engines.loading import family_class, load_engine

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(autouse=True)
def _isolated_caches(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """No test sees the developer's own model caches."""
    root = tmp_path_factory.getbasetemp() / "caches"
    monkeypatch.setenv("HF_HUB_CACHE", str(root / "hf"))
    monkeypatch.setenv("MODELSCOPE_CACHE", str(root / "ms"))


@pytest.fixture(scope="session")
def standin_dir(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Path]:
    """``standin_dir(family, weights="bin")``: the folder of a tiny stand-in, written once per session."""
    made: dict[tuple[str, str], Path] = {}

    def make(family: str, weights: str = "bin") -> Path:
        key = (family, weights)
        if key not in made:
            folder = tmp_path_factory.mktemp(f"{family}-{weights}")
            made[key] = family_class(family).write_standin(folder / f"tiny-{family}", weights_format=weights)
        return made[key]

    return make


@pytest.fixture(scope="session")
def engine_for(standin_dir: Callable[..., Path]) -> Callable[[str], Engine]:
    """``engine_for(family)``: a loaded stand-in engine, shared by the session (tests must not keep state in it)."""
    loaded: dict[str, Engine] = {}

    def get(family: str) -> Engine:
        if family not in loaded:
            loaded[family] = load_engine(str(standin_dir(family)), device="cpu")
        return loaded[family]

    return get
