"""The three layers keep their direction, and nothing heavy is imported before a model is loaded."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def imports_in(folder: str) -> dict[str, set[str]]:
    found = {}
    for path in (ROOT / folder).rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        found[str(path.relative_to(ROOT))] = set(re.findall(r"^\s*(?:from|import) (\w+)", text, re.MULTILINE))
    return found


def test_engines_import_no_textual_and_widgets_no_torch():
    assert not {f for f, names in imports_in("engines").items() if names & {"textual", "widgets", "workbench"}}
    assert not {f for f, names in imports_in("widgets").items() if names & {"torch", "transformers", "rwkv", "engines"}}


def test_importing_the_cli_and_engine_core_stays_light():
    code = (
        "import sys, engines, workbench.cli; "
        "heavy = {'torch', 'transformers', 'rwkv', 'modelscope', 'textual'} & set(sys.modules); "
        "print(sorted(heavy))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert result.stdout.strip() == "[]"
