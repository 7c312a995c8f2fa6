"""Shared fixtures: tiny random-weight stand-ins of each family, built once per test session."""

from __future__ import annotations

import os
import shutil

# Set before anything imports rwkv, transformers or huggingface_hub.
os.environ.setdefault("RWKV_JIT_ON", "0")
os.environ.setdefault("RWKV_CUDA_ON", "0")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ["HF_HUB_OFFLINE"] = "1"

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from zhbench.engines.api import ChatEngine
from zhbench.engines.registry import STANDIN_MARKER, family_spec, load_engine, write_standin

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(autouse=True)
def _isolated_caches(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """No test sees the developer's own model caches, nor writes into their zhbench cache (file digests)."""
    root = tmp_path_factory.getbasetemp() / "caches"
    monkeypatch.setenv("XDG_CACHE_HOME", str(root / "xdg"))
    monkeypatch.setenv("HF_HUB_CACHE", str(root / "hf"))
    monkeypatch.setenv("MODELSCOPE_CACHE", str(root / "ms"))
    monkeypatch.setenv("OLLAMA_MODELS", str(root / "ollama"))
    monkeypatch.setattr("zhbench.engines.hub.lmstudio.FOLDERS", (root / "lmstudio", root / "lm-studio-cache"))


@pytest.fixture(scope="session")
def standin_dir(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Path]:
    """``standin_dir(family, weights=None)``: the folder of a tiny stand-in (its weights in ``weights``, by
    default the family's published format), written once per session."""
    made: dict[tuple[str, str], Path] = {}

    def make(family: str, weights: str | None = None) -> Path:
        weights = weights or family_spec(family).standin_formats[0]
        key = (family, weights)
        if key not in made:
            folder = tmp_path_factory.mktemp(f"{family}-{weights}")
            made[key] = write_standin(family, folder / f"tiny-{family}", weights)
        return made[key]

    return make


@pytest.fixture(scope="session")
def engine_for(standin_dir: Callable[..., Path]) -> Callable[[str], Any]:
    """``engine_for(family)``: a loaded stand-in engine, shared by the session (tests must not keep state in it)."""
    loaded: dict[str, ChatEngine] = {}

    def get(family: str) -> Any:
        if family not in loaded:
            loaded[family] = load_engine(str(standin_dir(family)), device="cpu")
        return loaded[family]

    return get


#: the commit every snapshot ``hf_cached`` writes is named by
HF_COMMIT = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture
def hf_cached() -> Callable[[Path, str, Path], Path]:
    """``hf_cached(cache, repo_id, files_from)``: the files of a folder (a stand-in) as ``repo_id`` in the real
    Hugging Face cache layout under ``cache`` (blobs, a snapshot of symlinks, and refs/main); the snapshot."""

    def make(cache: Path, repo_id: str, files_from: Path) -> Path:
        repo = cache / f"models--{repo_id.replace('/', '--')}"
        snapshot = repo / "snapshots" / HF_COMMIT
        snapshot.mkdir(parents=True)
        (repo / "blobs").mkdir()
        for index, item in enumerate(sorted(files_from.iterdir())):
            if item.name == STANDIN_MARKER:
                continue
            blob = repo / "blobs" / f"blob{index}"
            shutil.copy(item, blob)
            (snapshot / item.name).symlink_to(Path("..") / ".." / "blobs" / blob.name)
        (repo / "refs").mkdir()
        (repo / "refs" / "main").write_text(HF_COMMIT)
        return snapshot

    return make
