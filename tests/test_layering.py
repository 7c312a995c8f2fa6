"""Nothing heavy is imported before it is needed. (Which package may import which is checked by the
import-linter contracts in pyproject.toml: `lint-imports`.)"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def loaded_by(statement: str) -> list[str]:
    code = (
        f"import json, sys; {statement}; "
        "heavy = {'torch', 'transformers', 'rwkv', 'modelscope', 'textual', 'numpy'} & set(sys.modules); "
        "print(json.dumps(sorted(heavy)))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    return json.loads(result.stdout)


def test_importing_the_cli_the_engine_api_and_the_registry_stays_light():
    assert loaded_by(
        "import zhbench.engines.api, zhbench.engines.registry, zhbench.workbench.cli; "
        "zhbench.engines.registry.families()"
    ) == []


def test_the_widgets_load_textual_and_nothing_that_runs_a_model():
    widgets = "zhbench.widgets.chat_pane, zhbench.widgets.gpu_meter, zhbench.widgets.model_list"
    assert loaded_by(f"import {widgets}") == ["textual"]


def test_the_command_line_leaves_the_families_the_bench_and_the_config_to_the_command_that_needs_them():
    """``zhbench --help`` and every command's parsing import the command modules only: finding the families
    (entry points), the bench and the config reader (46 modules) came with ``--help`` while ``chat`` imported
    the bench at the top."""
    code = (
        "import json, sys, zhbench.workbench.cli; "
        "wanted = {'importlib.metadata', 'zhbench.engines.registry', 'zhbench.workbench.session.bench', "
        "'zhbench.workbench.session.config'}; print(json.dumps(sorted(wanted & set(sys.modules))))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert json.loads(result.stdout) == []
