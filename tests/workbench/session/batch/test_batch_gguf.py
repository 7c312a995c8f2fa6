"""A batch run of a GGUF file names exactly what answered: its quantization and its file's sha256 go into
the run's model record and into every report's model legend."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from zhbench.engines.api import default_params
from zhbench.workbench.session.batch.report import build_report, render
from zhbench.workbench.session.batch.runner import run_batch
from zhbench.workbench.session.batch.store import BatchStore, read_run

pytest.importorskip("llama_cpp", reason="the gguf extra is not installed (pip install -e '.[gguf]')")


@pytest.fixture(autouse=True)
def _own_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The GGUF file's sha256 cache goes to the test's folder, not the developer's."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))


def short(engine: Any) -> Any:
    return default_params(engine).with_overrides({"max_new_tokens": 4})


def test_a_gguf_model_s_quantization_and_sha256_are_in_its_record_and_every_report_legend(
    run_dir: Path, make_settings: Callable[..., Any], scripted: Any, progress: Any, engine_for: Callable[[str], Any]
) -> None:
    gguf = engine_for("gguf")
    digest = hashlib.sha256(Path(gguf.describe().path).read_bytes()).hexdigest()
    engines = {"tiny-gguf": gguf, "other": scripted(lambda history, params: "答")}
    with BatchStore(run_dir, make_settings(list(engines), items=2)) as store:
        run_batch(store, list(engines), load=engines.__getitem__, settings_for=short, progress=progress)
    models = read_run(run_dir).models
    assert (models["tiny-gguf"].quantization, models["tiny-gguf"].sha256) == ("Q8_0", digest)
    assert (models["other"].quantization, models["other"].sha256) == (None, None)  # an engine that names none

    report = build_report(run_dir)
    named = f"tiny-gguf (Q8_0, sha256 {digest})"
    assert f"- **tiny-gguf**: tiny-gguf (Q8\\_0, sha256 {digest})" in render(report, "md")  # Markdown's escape
    assert "- **other**: other\n" in render(report, "md")
    assert f"<li><b>tiny-gguf</b>: {named}</li>" in render(report, "html")
    data = json.loads(render(report, "json"))
    first, second = data["models"]
    assert (first["quantization"], first["sha256"]) == ("Q8_0", digest)
    assert "quantization" not in second and "sha256" not in second
