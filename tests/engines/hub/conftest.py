"""Fake Hugging Face and ModelScope hubs on 127.0.0.1 serving a tiny stand-in, and the clients pointed at them."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.engines.hub.fake_hub import FakeHub
from tests.engines.hub.fake_modelscope import FakeModelScope

#: a catalog id, so that `zhbench models` has a row to mark available
REPO = "shibing624/gpt2-dialogbot-base-chinese"
#: what a pull of it fetches: the family's files, of one weight format
WANTED = {
    "config.json",
    "model.safetensors",
    "special_tokens_map.json",
    "tokenizer_config.json",
    "vocab.txt",
    "zhbench-standin.json",
}


@pytest.fixture
def repo_folder(standin_dir: Callable[..., Path], tmp_path: Path) -> Path:
    """A repository as published ones look: safetensors and .bin weights, a training checkpoint, docs, a subfolder."""
    folder = tmp_path / "repo"
    shutil.copytree(standin_dir("gpt2-dialogbot", "safetensors"), folder)
    shutil.copy(standin_dir("gpt2-dialogbot", "bin") / "pytorch_model.bin", folder)
    (folder / "optimizer.pt").write_bytes(b"\0" * 1000)
    (folder / "training_args.bin").write_bytes(b"\0" * 100)
    (folder / "README.md").write_text("# a model\n", encoding="utf-8")
    (folder / "onnx").mkdir()
    (folder / "onnx" / "model.onnx").write_bytes(b"\0" * 1000)
    return folder


@pytest.fixture
def fake_hub(repo_folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeHub]:
    """The fake hub serving ``REPO``, with ``HF_ENDPOINT`` pointing at it, offline mode off and an empty cache."""
    import huggingface_hub.constants

    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    hub = FakeHub({REPO: repo_folder}).start()
    monkeypatch.setenv("HF_ENDPOINT", hub.url)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)  # read once, at import
    # The client hands on what it receives in chunks of 10 MiB (progress, cancelling, and where a retry after a
    # dropped connection resumes); the stand-in's weights are 2.9 MB, so the tests use chunks of 64 KiB.
    monkeypatch.setattr(huggingface_hub.constants, "DOWNLOAD_CHUNK_SIZE", 64 * 1024)
    yield hub
    hub.stop()


@pytest.fixture
def fake_modelscope(repo_folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeModelScope]:
    """The fake ModelScope serving ``REPO``, with ``MODELSCOPE_ENDPOINT`` pointing at it and an empty cache."""
    monkeypatch.setenv("MODELSCOPE_CACHE", str(tmp_path / "ms-cache"))
    hub = FakeModelScope({REPO: repo_folder}).start()
    monkeypatch.setenv("MODELSCOPE_ENDPOINT", hub.url)
    monkeypatch.delenv("MODELSCOPE_DOMAIN", raising=False)
    yield hub
    hub.stop()
