"""The template chosen for a model file that carries none: remembered in the config's ``[templates]`` (the
rest of the file kept), read back, refused when malformed; and the catalog template an Ollama model's own Go
template resembles, read from the store."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.engines.hub.gguf_writer import write_gguf, write_ollama_model
from zhbench.engines.families.gguf.engine import CATALOG_DIR
from zhbench.engines.hub.ollama import ollama_models
from zhbench.workbench.session.chat_templates import closest_template, remember_template
from zhbench.workbench.session.config import load_config

CATALOG = {file.stem: file.read_text(encoding="utf-8") for file in CATALOG_DIR.glob("*.jinja")}
#: Modelfile templates as Ollama's library writes them (Go templates), shortened
GO_TEMPLATES = {
    "chatml": "{{ if .System }}<|im_start|>system\n{{ .System }}<|im_end|>\n{{ end }}<|im_start|>user\n"
    "{{ .Prompt }}<|im_end|>\n<|im_start|>assistant\n",
    "qwen2.5": "{{- if .Tools }}<|im_start|>system\n# Tools\n<tools>\n{{ range .Tools }}{{ . }}{{ end }}</tools>\n"
    "<tool_call>\n{}\n</tool_call><|im_end|>\n{{ end }}{{ range .Messages }}<|im_start|>{{ .Role }}\n"
    '{{ if .ToolCalls }}<tool_call>{{ end }}{{ if eq .Role "tool" }}<tool_response>\n{{ .Content }}\n'
    "</tool_response>{{ end }}<|im_end|>\n{{ end }}",
    "deepseek-r1-distill": "{{- if .System }}{{ .System }}{{ end }}{{- range $i, $_ := .Messages }}"
    '{{- if eq .Role "user" }}<｜User｜>{{ .Content }}{{- else if eq .Role "assistant" }}<｜Assistant｜>'
    "{{ .Content }}<｜end▁of▁sentence｜>{{ end }}{{ end }}",
}


@pytest.mark.parametrize("expected", sorted(GO_TEMPLATES))
def test_the_catalog_template_with_the_go_template_s_special_tokens_is_suggested(expected: str) -> None:
    assert closest_template(GO_TEMPLATES[expected], CATALOG) == expected


def test_a_go_template_sharing_no_special_token_suggests_none() -> None:
    assert closest_template("[INST] {{ .Prompt }} [/INST]", CATALOG) is None


def test_a_chosen_template_is_written_to_the_templates_table_and_the_rest_of_the_file_kept(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    head = '# mine\ntheme = "zhbench-light"\n\n[templates]\n"other.gguf" = "qwen3"  # by hand\n'
    tail = "\n[params.gguf]\ntemperature = 0.5\n"
    path.write_text(head + tail, encoding="utf-8")
    config = load_config(path)
    assert config.templates == {"other.gguf": "qwen3"}
    assert remember_template(config, "qwen2.5:7b", "chatml") is None
    assert remember_template(config, "qwen2.5:7b", "qwen2.5") is None  # asked again: the answer replaced
    text = path.read_text(encoding="utf-8")
    assert text == head + '"qwen2.5:7b" = "qwen2.5"\n' + tail
    again = load_config(path)
    assert again.templates == {"other.gguf": "qwen3", "qwen2.5:7b": "qwen2.5"} and not again.problems
    assert again.params == {"gguf": {"temperature": 0.5}} and again.theme == "zhbench-light"


def test_a_first_template_makes_the_table_and_a_model_id_with_quotes_stays_one_key(tmp_path: Path) -> None:
    path = tmp_path / "new" / "config.toml"
    config = load_config(path)
    odd = 'hf.co/some"one/x-GGUF:Q4_K_M\\'
    assert remember_template(config, odd, "chatml") is None
    assert load_config(path).templates == {odd: "chatml"}


def test_a_config_that_does_not_parse_is_left_alone_and_the_choice_holds_for_the_session(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text("theme = [\n", encoding="utf-8")
    config = load_config(path)
    problem = remember_template(config, "qwen2.5:7b", "chatml")
    assert problem is not None and problem.startswith("template not saved:") and "\n" not in problem
    assert path.read_text(encoding="utf-8") == "theme = [\n"
    assert config.templates == {"qwen2.5:7b": "chatml"}


@pytest.mark.parametrize("table", ['"qwen2.5:7b" = 5', '"qwen2.5:7b" = ""', '"qwen2.5:7b" = "chat\\nml"'])
def test_a_malformed_templates_entry_is_one_problem_and_ignored(tmp_path: Path, table: str) -> None:
    path = tmp_path / "config.toml"
    path.write_text(f"[templates]\n{table}\n", encoding="utf-8")
    config = load_config(path)
    assert config.templates == {}
    assert [problem.split(": ", 1)[1] for problem in config.problems] == [
        "[templates] 'qwen2.5:7b' should be a template name or a .jinja file; ignored"
    ]


def test_a_templates_key_that_is_no_table_is_one_problem(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text('templates = "chatml"\n', encoding="utf-8")
    config = load_config(path)
    assert config.templates == {}
    assert [problem.split(": ", 1)[1] for problem in config.problems] == [
        'templates should be a table of "model id" = "template name"; ignored'
    ]


def test_an_ollama_model_s_template_layer_is_read_from_its_blob_and_a_missing_one_is_none(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = tmp_path / "ollama"
    monkeypatch.setenv("OLLAMA_MODELS", str(store))
    write_ollama_model(store, "qwen2.5", "7b", write_gguf(tmp_path / "a.gguf"), template=GO_TEMPLATES["qwen2.5"])
    write_ollama_model(store, "other", "latest", write_gguf(tmp_path / "b.gguf", "F16"))  # its blob is not there
    found = {model.name: model for model in ollama_models()}
    assert found["qwen2.5:7b"].template_text() == GO_TEMPLATES["qwen2.5"]
    assert found["other:latest"].problem is None and found["other:latest"].template_text() is None
