"""A chat template named for a model file that carries none, remembered per model.

A GGUF file from Ollama's store may have its chat template only in the Modelfile, as a Go template no Jinja
renderer runs; such a model loads with a template its family's catalog offers (``--template NAME``). The one
chosen for a model is kept in the config's ``[templates]`` table under the model's id (``model_identity``'s:
``qwen2.5:7b`` for an Ollama model, the file's name for a file elsewhere), so the app asks once and the command
line needs no ``--template`` after::

    [templates]
    "qwen2.5:7b" = "qwen2.5"

Where Ollama's store holds the model's own Go template, the catalog template that uses the same special tokens
(``<|im_start|>`` …) is the one suggested.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from zhbench.engines.hub import ollama
from zhbench.engines.local.chat_render import ChatTemplateNeeded
from zhbench.workbench.session.config import Config, text_to_edit, write_edited
from zhbench.workbench.session.identity import path_model_id

#: the load option a family takes a template by (the gguf family's ``--template``)
TEMPLATE_OPTION = "template"
#: the config's table of remembered templates
TABLE = "templates"
#: the marks of a chat format: special tokens (``<|im_start|>``, ``<｜Assistant｜>``, ``[gMASK]``) and tags
#: (``<think>``, ``<tool_call>``; a closing tag counts as its opening one)
_MARK = re.compile(r"<\|[^|<>\s]{1,40}\|>|<｜[^｜<>]{1,40}｜>|\[gMASK\]|</?[a-z_]{2,20}>")
_TABLE_HEADER = re.compile(rf"^\[\s*{TABLE}\s*\]\s*(#.*)?$")


@dataclass(frozen=True)
class TemplateQuestion:
    """What to ask about a model that loads only once a template is named for it."""

    #: what the load was given (loaded again with the answer)
    spec: str
    #: the model's id: the key its answer is remembered under
    model_id: str
    #: why it did not load, as the family said it
    reason: str
    #: the catalog's template names
    choices: tuple[str, ...]
    #: the one whose special tokens the model's own (Go) template uses, where the store holds one
    suggested: str | None = None


def remembered_template(templates: Mapping[str, str], path: Path, family: str) -> str | None:
    """The template the config names for the model at ``path``, where its family takes one."""
    from zhbench.engines.registry import family_spec

    if TEMPLATE_OPTION not in family_spec(family).load_options:
        return None
    return templates.get(path_model_id(path))


def template_question(spec: str, needed: ChatTemplateNeeded) -> TemplateQuestion:
    """The question for the model ``spec`` names, whose load said ``needed``."""
    model = ollama.blob_model(needed.path)
    own = model.template_text() if model is not None else None
    return TemplateQuestion(
        spec,
        path_model_id(needed.path),
        needed.reason,
        tuple(needed.catalog),
        closest_template(own, needed.catalog) if own else None,
    )


def template_advice(question: TemplateQuestion, config: Path) -> str:
    """The command line's one line for ``question``: the model as the user named it, why it did not load, and
    the ``[templates]`` entry for the config at ``config`` that loads it (with the suggested template)."""
    name = question.suggested or "NAME"
    why = f" (its Modelfile's template uses {name}'s special tokens)" if question.suggested else ""
    entry = f"{_toml_string(question.model_id)} = {_toml_string(name)}"
    return f"{question.spec}: {question.reason}: write {entry} under [{TABLE}] in {config}{why}"


def closest_template(text: str, catalog: Mapping[str, str]) -> str | None:
    """The catalog template whose special tokens and tags are most nearly those of ``text`` (a template in
    any language: Ollama's are Go templates), or None when none shares one with it."""
    marks = _marks(text)
    scores = {name: _overlap(marks, _marks(source)) for name, source in sorted(catalog.items())}
    best = max(scores, key=scores.__getitem__, default=None)
    return best if best is not None and scores[best] > 0 else None


def _marks(text: str) -> set[str]:
    return {mark.replace("</", "<") for mark in _MARK.findall(text)}


def _overlap(first: set[str], second: set[str]) -> float:
    """The share of the marks of either that both have."""
    return len(first & second) / len(first | second) if first | second else 0.0


def remember_template(config: Config, model_id: str, name: str) -> str | None:
    """Name the template ``name`` for ``model_id`` in ``config`` and in its file's ``[templates]`` (the rest of
    the file kept as it is); what kept it from the file, as text, or None. A file that does not parse, or
    whose templates are written in a way this cannot edit, is left alone."""
    config.templates[model_id] = name
    path = config.path
    line = f"{_toml_string(model_id)} = {_toml_string(name)}"
    text, problem = text_to_edit(path, "template")
    if problem is not None:
        return problem
    lines = text.splitlines()
    start = next((i for i, text_line in enumerate(lines) if _TABLE_HEADER.match(text_line.strip())), None)
    if start is None:
        lines += ["", f"[{TABLE}]", line] if lines else [f"[{TABLE}]", line]
    else:
        end = next((i for i in range(start + 1, len(lines)) if lines[i].lstrip().startswith("[")), len(lines))
        kept = [entry for entry in lines[start + 1 : end] if _entry_key(entry) != model_id]
        while kept and not kept[-1].strip():
            kept.pop()
        lines[start + 1 : end] = [*kept, line, *([""] if end < len(lines) else [])]
    updated = "\n".join(lines) + "\n"
    try:
        written = tomllib.loads(updated).get(TABLE)
    except tomllib.TOMLDecodeError as exc:
        return f"template not saved: {path} holds [{TABLE}] in a form this cannot edit ({exc})"
    if not isinstance(written, dict) or written.get(model_id) != name:
        return f"template not saved: {path} holds [{TABLE}] in a form this cannot edit"
    return write_edited(path, updated, "template")


def _entry_key(line: str) -> str | None:
    """The key a ``key = value`` line of a table names, or None for a comment, a blank or another line."""
    try:
        entry = tomllib.loads(line)
    except tomllib.TOMLDecodeError:
        return None
    return next(iter(entry), None) if len(entry) == 1 else None


def _toml_string(text: str) -> str:
    """``text`` as a TOML basic string: quotes, backslashes and control characters escaped."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    return '"' + re.sub(r"[\x00-\x1f\x7f]", lambda m: f"\\u{ord(m.group()):04x}", escaped) + '"'
