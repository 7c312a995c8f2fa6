"""Files that lie or never end: a FIFO, device or folder where a file is read is refused at once; a lying
safetensors header or config is one clear line from the fit check and the load, and one row with its reason
in the model list, never an empty list (issue 26 §3, files)."""

from __future__ import annotations

import json
import os
import shutil
import struct
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from zhbench.engines.errors import ModelLoadError, ZhbenchError
from zhbench.engines.hub.discovery import local_models
from zhbench.engines.local.checkpoints import read_json
from zhbench.engines.registry import load_engine
from zhbench.workbench.cli.common import CommandError, read_history
from zhbench.workbench.session.batch.prompts import PromptSetError, read_prompt_set
from zhbench.workbench.session.config import load_config
from zhbench.workbench.session.fit_check import check_fit
from zhbench.workbench.session.offer import rows_on_offer, with_fit


def within(seconds: float, call: Callable[[], Any]) -> Any:
    """``call()``'s result or exception, failing (not hanging) when it runs past ``seconds``."""
    outcome: list[Any] = []

    def run() -> None:
        try:
            outcome.append(call())
        except BaseException as exc:
            outcome.append(exc)

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(seconds)
    assert outcome, f"still reading after {seconds} s"
    return outcome[0]


@pytest.fixture
def fifo(tmp_path: Path) -> Path:
    path = tmp_path / "a-fifo"
    os.mkfifo(path)
    return path


READERS: dict[str, tuple[Callable[[Path], Any], type[Exception]]] = {
    "a model's config.json": (read_json, ModelLoadError),
    "a prompt file": (read_prompt_set, PromptSetError),
    "a history file": (read_history, CommandError),
}


@pytest.mark.parametrize("reader", READERS, ids=str)
@pytest.mark.parametrize("kind", ["fifo", "device", "folder"])
def test_a_fifo_device_or_folder_is_refused_at_once(reader: str, kind: str, fifo: Path, tmp_path: Path) -> None:
    path = {"fifo": fifo, "device": Path("/dev/zero"), "folder": tmp_path}[kind]
    read, error = READERS[reader]
    outcome = within(3, lambda: read(path))
    assert isinstance(outcome, error), outcome
    assert f"{path} is a" in str(outcome) and "not a regular file" in str(outcome)


def test_a_config_that_is_a_fifo_or_device_gives_the_defaults_and_says_so(fifo: Path) -> None:
    for path in (fifo, Path("/dev/zero")):
        config = within(3, lambda path=path: load_config(path))
        assert config.model_dirs == [] and "not a regular file" in config.problems[0]


def _lying_header(raw: bytes, length: int | None = None) -> Callable[[Path], None]:
    def write(folder: Path) -> None:
        said = len(raw) if length is None else length
        (folder / "model.safetensors").write_bytes(struct.pack("<Q", said) + raw + bytes(64))

    return write


def _config(change: Callable[[dict[str, Any]], object]) -> Callable[[Path], None]:
    def write(folder: Path) -> None:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
        change(config)
        (folder / "config.json").write_text(json.dumps(config), encoding="utf-8")

    return write


#: each lie, and what the one line says
LIES: dict[str, tuple[Callable[[Path], None], str]] = {
    "length past the file": (_lying_header(b"{}", 10**9), "header is said to be 1,000,000,000 bytes"),
    "length 2^63": (_lying_header(b"{}", 2**63), "header is said to be 9,223,372,036,854,775,808 bytes"),
    "a list": (_lying_header(b"[1, 2]"), "its header is a JSON list"),
    "a number": (_lying_header(b"42"), "its header is a JSON int"),
    "no dtype": (_lying_header(b'{"w": {"shape": [2], "data_offsets": [0, 8]}}'), "tensor 'w' has no dtype"),
    "shape as text": (_lying_header(b'{"w": {"dtype": "F32", "shape": "2", "data_offsets": [0, 8]}}'), "no dtype"),
    "more bytes than the file": (_lying_header(b'{"w": {"dtype": "F32", "shape": [9999, 9999]}}'), "more bytes"),
    "header nested 100k deep": (_lying_header(b"[" * 100_000 + b"]" * 100_000), "nested too deeply"),
    "config nested 100k deep": (
        lambda folder: (folder / "config.json").write_text("[" * 100_000 + "]" * 100_000, encoding="utf-8"),
        "config.json: unreadable JSON (nested too deeply)",
    ),
    "sizes that overflow": (
        _config(lambda c: c.update(hidden_size=10**12, num_attention_heads=10**9)),
        "num_attention_heads is 1,000,000,000, past any model's",
    ),
}


@pytest.fixture
def models(standin_dir: Callable[..., Path], tmp_path: Path) -> Path:
    """A model_dirs folder: a good stand-in, and a copy of it per lie."""
    folder = tmp_path / "models"
    shutil.copytree(standin_dir("chat-template"), folder / "good")
    for name, (lie, _) in LIES.items():
        shutil.copytree(folder / "good", folder / name)
        lie(folder / name)
    (folder / "half-written").mkdir()  # a config.json cut off mid-write: its family cannot even be told
    (folder / "half-written" / "config.json").write_text('{"architectures": ["Qwen2ForCausalLM"], "model_type": ')
    return folder


def test_each_lie_is_one_line_from_the_fit_check_and_one_row_in_the_model_list(models: Path) -> None:
    for name, (_, said) in LIES.items():
        outcome = within(10, lambda name=name: check_fit(str(models / name), device="cpu"))
        assert isinstance(outcome, ModelLoadError) and said in str(outcome) and "\n" not in str(outcome), name
    rows = {row.name: row for row in (with_fit(r, "cpu") for r in rows_on_offer(local_models([models]), gpu=False))}
    everyone = {*LIES, "good", "half-written"}
    assert {name for name in rows if name in everyone} == everyone
    assert rows["good"].problem is None and rows["good"].fit is not None
    assert "config.json: unreadable JSON" in (rows["half-written"].problem or "")
    for name, (_, said) in LIES.items():
        assert said.split(": ")[-1] in (rows[name].problem or ""), name
    assert (rows["length 2^63"].problem or "").startswith("model.safetensors: not a safetensors file")


@pytest.mark.parametrize("name", ["config nested 100k deep", "sizes that overflow"])
def test_a_forced_load_of_a_lying_model_fails_cleanly_within_seconds(models: Path, name: str) -> None:
    started = time.monotonic()
    with pytest.raises(ZhbenchError) as raised:
        load_engine(str(models / name), device="cpu")
    assert time.monotonic() - started < 30 and "\n" not in str(raised.value)


def test_a_fifo_among_a_models_files_is_refused_before_a_library_reads_it(
    standin_dir: Callable[..., Path], tmp_path: Path
) -> None:
    """The load passed over it and failed on "an empty vocabulary", naming neither the file nor the cause."""
    folder = tmp_path / "tiny-fifo-tokenizer"
    shutil.copytree(standin_dir("chat-template"), folder)
    (folder / "tokenizer.json").unlink()
    os.mkfifo(folder / "tokenizer.json")
    outcome = within(10, lambda: load_engine(str(folder), device="cpu"))
    assert isinstance(outcome, ModelLoadError)
    assert str(outcome) == f"{folder / 'tokenizer.json'}: is a FIFO, not a regular file"
