"""One registry of families, found through entry points: a family from another package is listed,
detected, loaded and made tiny exactly as zhbench's own are, and a broken one takes nothing down."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from zhbench.engines.registry import ENTRY_POINT_GROUP, families, family_spec

#: a family as another package would ship it: its own engine (here one with no weights), and a FamilySpec
PLUGIN = '''
from __future__ import annotations

import json
import time
from pathlib import Path

from zhbench.engines.api import EngineInfo, FamilySpec, LoadOptions, MemoryNeed
from zhbench.engines.types import GenerationParams, Reply, ReplyStats, StopReason


class MirrorEngine:
    """Answers with the user's message backwards, a character at a time."""

    family = "mirror"

    def __init__(self, path: Path, greeting: str) -> None:
        self.path, self.greeting = path, greeting

    def describe(self) -> EngineInfo:
        return EngineInfo(family=self.family, path=str(self.path), device="cpu")

    def presets(self) -> dict[str, GenerationParams]:
        return {"default": GenerationParams(max_new_tokens=100)}

    def chat_commands(self) -> dict[str, str]:
        return {}

    def reply(self, history, params=None, *, cancel=None, on_text=None, on_reasoning=None):
        params = params or self.presets()["default"]
        started = time.perf_counter()
        text = ""
        for character in (self.greeting + history[-1]["content"][::-1])[: params.max_new_tokens]:
            text += character
            if on_text is not None:
                on_text(character)
        total = time.perf_counter() - started
        stats = ReplyStats(0, len(text), None, 0.0, total, StopReason.EOS)
        return Reply(self.family, text, params, stats)


def matches(path: Path) -> bool:
    return (path / "mirror.json").is_file()


def load(path: Path, options: LoadOptions) -> MirrorEngine:
    return MirrorEngine(path, json.loads((path / "mirror.json").read_text(encoding="utf-8"))["greeting"])


def estimate(path: Path, options: LoadOptions, context: int | None) -> MemoryNeed:
    """What its own file says a load takes (a mirror holds no weights a generic reader would find)."""
    stated = json.loads((path / "mirror.json").read_text(encoding="utf-8")).get("needs_bytes", 0)
    return MemoryNeed(options.device or "cpu", "mirrored", stated, 0, 0, context or 0)


def write_standin(folder: Path, weights_format: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "mirror.json").write_text(json.dumps({"greeting": "镜:"}), encoding="utf-8")
    return folder


FAMILY = FamilySpec(
    name="mirror",
    summary="a test family from another package",
    matches_layout=matches,
    load=load,
    standin="zhbench_mirror:write_standin",
    standin_formats=("json",),
    estimate_memory=estimate,
)
'''


def install(site: Path, name: str, entry_points: str, module: str | None = None) -> None:
    """A distribution as pip leaves it: a module and a ``.dist-info`` with ``entry_points.txt``."""
    site.mkdir(parents=True, exist_ok=True)
    if module is not None:
        (site / f"{name}.py").write_text(module, encoding="utf-8")
    info = site / f"{name}-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n", encoding="utf-8")
    (info / "entry_points.txt").write_text(textwrap.dedent(entry_points), encoding="utf-8")


def zhbench(site: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run(
        [sys.executable, "-m", "zhbench", *args], env=env, capture_output=True, text=True, timeout=120
    )


def test_the_built_in_families_are_registered_through_entry_points() -> None:
    built_in = {"gpt2-dialogbot", "dialogpt-zh", "chatyuan", "promptclue", "rwkv4", "eva2", "chat-template", "gguf"}
    assert set(families()) == built_in
    assert family_spec("rwkv4").load_options.keys() == {"strategy"}


@pytest.mark.slow
def test_a_family_from_another_package_is_listed_loaded_and_made_tiny(tmp_path: Path) -> None:
    site = tmp_path / "site"
    install(site, "zhbench_mirror", f"[{ENTRY_POINT_GROUP}]\nmirror = zhbench_mirror:FAMILY\n", PLUGIN)
    made = zhbench(site, "make-tiny", "mirror", str(tmp_path / "models" / "my-mirror"))
    assert made.returncode == 0, made.stderr

    listed = zhbench(site, "models", "--dir", str(tmp_path / "models"), "--json")
    assert listed.returncode == 0, listed.stderr
    (row,) = [r for r in json.loads(listed.stdout) if r["source"] == "local"]
    assert row["family"] == "mirror" and row["path"].endswith("my-mirror")

    asked = zhbench(site, "ask", "--model", row["path"], "--json", "你好")
    assert asked.returncode == 0, asked.stderr
    assert json.loads(asked.stdout)["reply"] == "镜:好你"
    streamed = zhbench(site, "ask", "--model", row["path"], "天气")
    assert streamed.stdout == "镜:气天\n"
    shown = zhbench(site, "prompt", "--model", row["path"], "--history", str(_history(tmp_path)))
    assert shown.returncode == 1 and "no prompt ids to show" in shown.stderr


def test_a_family_from_another_package_gets_its_own_memory_estimate(tmp_path: Path) -> None:
    site = tmp_path / "site"
    install(site, "zhbench_mirror", f"[{ENTRY_POINT_GROUP}]\nmirror = zhbench_mirror:FAMILY\n", PLUGIN)
    folder = tmp_path / "huge-mirror"
    folder.mkdir()
    (folder / "mirror.json").write_text(json.dumps({"greeting": "镜:", "needs_bytes": 10**15}), encoding="utf-8")

    refused = zhbench(site, "ask", "--model", str(folder), "--device", "cpu", "你好")
    assert refused.returncode == 1
    assert "does not fit: needs about 909 TiB on cpu (mirrored; weights 909 TiB" in refused.stderr
    assert zhbench(site, "ask", "--model", str(folder), "--force", "你好").stdout == "镜:好你\n"


def test_a_broken_family_is_named_and_the_others_still_work(tmp_path: Path, standin_dir) -> None:
    site = tmp_path / "site"
    install(site, "zhbench_broken", f"[{ENTRY_POINT_GROUP}]\nbroken = zhbench_broken_missing:FAMILY\n")
    listed = zhbench(site, "models", "--dir", str(standin_dir("chatyuan").parent), "--json")
    assert listed.returncode == 0
    assert "family 'broken'" in listed.stderr and "cannot be imported" in listed.stderr
    assert any(r["family"] == "chatyuan" for r in json.loads(listed.stdout))


def _history(tmp_path: Path) -> Path:
    path = tmp_path / "history.json"
    path.write_text(json.dumps([{"role": "user", "content": "你好"}]), encoding="utf-8")
    return path


@pytest.mark.parametrize("name", ["gpt2-dialogbot", "rwkv4"])
def test_loading_a_model_imports_no_stand_in_code(standin_dir, name: str) -> None:
    code = (
        "import sys; from engines.registry import load_engine; "
        f"load_engine({str(standin_dir(name))!r}, device='cpu'); "
        "print(sorted(m for m in sys.modules if m.startswith('zhbench.engines.standins')))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "[]"
