"""What ``pip install zhbench`` puts into site-packages: one top-level package, ``zhbench``, holding the
repository's engines, workbench, widgets and themes as real folders, with its data files, entry points and
``python -m zhbench``."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> zipfile.ZipFile:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out), str(ROOT)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (built,) = out.glob("zhbench-*.whl")
    return zipfile.ZipFile(built)


def test_the_wheel_installs_one_top_level_package_named_zhbench(wheel: zipfile.ZipFile) -> None:
    tops = {name.split("/")[0] for name in wheel.namelist() if not name.split("/")[0].endswith(".dist-info")}
    assert tops == {"zhbench"}
    names = set(wheel.namelist())
    for module in ("engines/api.py", "workbench/cli/__init__.py", "widgets/chat_pane.py", "themes/__init__.py"):
        assert f"zhbench/{module}" in names
    assert "zhbench/themes/zhbench.tcss" in names
    assert any(n.startswith("zhbench/workbench/session/batch/builtin/") and n.endswith(".jsonl") for n in names)


def test_the_wheel_names_its_command_and_families_inside_the_package(wheel: zipfile.ZipFile) -> None:
    (entry_points,) = [n for n in wheel.namelist() if n.endswith(".dist-info/entry_points.txt")]
    text = wheel.read(entry_points).decode()
    assert "zhbench = zhbench.workbench.cli:main" in text
    targets = [line.split("=", 1)[1].strip() for line in text.splitlines() if "=" in line]
    assert targets and all(target.startswith("zhbench.") for target in targets)


def test_python_dash_m_zhbench_runs_the_command() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "zhbench", "--version"], capture_output=True, text=True, cwd=ROOT, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert "zhbench" in result.stdout
