"""Where zhbench keeps its files, and the user's TOML config.

The config file (``zhbench paths`` prints where it is) looks like::

    theme = "zhbench-light"          # remembered when switched from the command palette
    model_dirs = ["~/models"]        # extra folders whose sub-folders (and .pth files) are models
    maker_names = ["星火", "讯飞"]     # arena: more names that, in a reply, reveal its model
    quant = "Q4_K_M"                 # the quantization `zhbench pull` takes from a GGUF repository
    panes = 3                        # the app opens with this many panes side by side (2 to 4)

    [keymap]                         # binding id = "keys" (comma-separated), see the README
    send-active = "ctrl+t"

    [params.chatyuan]                # decoding defaults per family, on top of upstream's
    temperature = 0.8

    [strategy]                       # RWKV: how each model runs, by path, hub id or file name
    "RWKV-4-Pile-7B-Instruct-test2-20230209.pth" = "cuda fp16i8 *10 -> cuda fp16"

    [templates]                      # GGUF: the chat template of a model file that carries none, by model id
    "qwen2.5:7b" = "qwen2.5"         # (a catalog name or a .jinja file; the app writes it when asked)

    [chat_template]                  # how long one render of a model's chat template may run, and write
    time_limit = 2.0                 # seconds
    max_output_mb = 4                # millions of characters

    [servers.vllm]                   # an OpenAI-compatible server: its models are vllm/MODEL
    base_url = "http://127.0.0.1:8000/v1"
    api_key_env = "VLLM_API_KEY"     # the NAME of the variable holding its key; the key is never written
    extra = { chat_template_kwargs = { enable_thinking = false } }   # sent with every request

A config that cannot be read or has wrong types gives a clear message and the defaults, never a crash.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import platformdirs

from zhbench.engines.local.chat_render import RenderLimits
from zhbench.engines.local.file_reads import read_regular_text
from zhbench.engines.remote.server import RemoteServer, servers_from_config
from zhbench.workbench.session.file_writes import FileWriteError, write_atomically
from zhbench.workbench.session.panes import APP_PANES

APP_NAME = "zhbench"
DEFAULT_THEME = "zhbench-dark"


def data_dir() -> Path:
    return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))


def transcripts_dir() -> Path:
    return data_dir() / "transcripts"


def exports_dir() -> Path:
    return data_dir() / "exports"


def demo_models_dir() -> Path:
    """Where the two tiny random-weight demo models are written the first time they are needed."""
    return Path(platformdirs.user_cache_dir(APP_NAME, appauthor=False)) / "demo-models"


def config_path() -> Path:
    return Path(platformdirs.user_config_dir(APP_NAME, appauthor=False)) / "config.toml"


def owned_by_zhbench(path: Path) -> str | None:
    """What of zhbench's own records ``path`` would overwrite (its config, a transcript, the vote store, the
    search index, a cache), or None for a file a person may write to (anything else, the exports folder
    included)."""
    target = Path(os.path.realpath(path.expanduser()))
    cache = Path(os.path.realpath(platformdirs.user_cache_dir(APP_NAME, appauthor=False)))
    data = Path(os.path.realpath(data_dir()))
    if target == Path(os.path.realpath(config_path())):
        return "zhbench's config file"
    if target.is_relative_to(Path(os.path.realpath(exports_dir()))):
        return None
    if target.is_relative_to(data):
        return "one of zhbench's own records (transcripts, votes, search index)"
    if target.is_relative_to(cache):
        return "one of zhbench's own cached files"
    return None


def user_paths() -> dict[str, Path]:
    """Every place zhbench writes, by name."""
    return {
        "config": config_path(),
        "transcripts": transcripts_dir(),
        "exports": exports_dir(),
        "demo_models": demo_models_dir(),
    }


@dataclass
class Config:
    theme: str = DEFAULT_THEME
    model_dirs: list[Path] = field(default_factory=list)
    keymap: dict[str, str] = field(default_factory=dict)
    params: dict[str, dict[str, Any]] = field(default_factory=dict)
    strategies: dict[str, str] = field(default_factory=dict)
    #: OpenAI-compatible servers by name (``[servers.NAME]``)
    servers: dict[str, RemoteServer] = field(default_factory=dict)
    #: arena: names that mark a blind battle as identity-leaked, on top of ``arena.leaks.DEFAULT_MAKER_NAMES``
    maker_names: list[str] = field(default_factory=list)
    #: how long a chat template may render and how much it may write (``[chat_template]``)
    render_limits: RenderLimits = field(default_factory=RenderLimits)
    #: the quantization ``zhbench pull`` takes from a GGUF repository when none is given (``Q4_K_M``)
    quant: str | None = None
    #: the chat template of a model file that carries none, by model id (``[templates]``; chat_templates.py)
    templates: dict[str, str] = field(default_factory=dict)
    #: how many panes the app opens with (``panes = 3``; 2 to 4)
    panes: int = APP_PANES.start
    #: what was wrong with the file, if anything (the defaults are used for what was wrong)
    problems: list[str] = field(default_factory=list)
    path: Path = field(default_factory=config_path)

    def strategy_for(self, spec: str) -> str | None:
        """The RWKV strategy configured for a model: by its path or id as given, or by its file name."""
        return self.strategies.get(spec) or self.strategies.get(Path(spec).name)


def load_config(path: Path | None = None) -> Config:
    """The config at ``path`` (default: the user config dir); defaults where it is missing or wrong."""
    path = path or config_path()
    config = Config(path=path)
    try:
        data = tomllib.loads(read_regular_text(path))
    except FileNotFoundError:
        return config
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        config.problems.append(f"{path}: {exc}; using the defaults")
        return config
    except RecursionError:  # the parser recurses once per level of nesting
        config.problems.append(f"{path}: nested too deeply to read; using the defaults")
        return config

    def read(key: str, default: Any, valid: Callable[[Any], bool], expected: str) -> Any:
        value = data.get(key, default)
        if valid(value):
            return value
        config.problems.append(f"{path}: {key} should be {expected}; ignored")
        return default

    config.theme = read("theme", DEFAULT_THEME, lambda v: isinstance(v, str), "a string")
    config.model_dirs = [Path(d).expanduser() for d in read("model_dirs", [], _list_of(str), "a list of folders")]
    for binding, keys in read("keymap", {}, _table_of(str), 'a table of binding-id = "keys"').items():
        problem = key_problem(keys)
        if problem is None:
            config.keymap[binding] = keys
        else:  # a binding with a key no terminal sends would leave its action with no key at all
            config.problems.append(f"{path}: keymap {binding} = {keys!r}: {problem}; its default key is kept")
    params = read("params", {}, _table_of(dict), "tables of [params.FAMILY] settings")
    config.params = {family: dict(values) for family, values in params.items()}
    config.strategies = dict(read("strategy", {}, _table_of(str), 'a table of model = "strategy"'))
    config.servers, problems = servers_from_config(read("servers", {}, _table_of(dict), "[servers.NAME] tables"))
    config.problems += [f"{path}: {problem}" for problem in problems]
    config.maker_names = list(read("maker_names", [], _list_of(str), "a list of names"))
    config.quant = read("quant", None, lambda v: v is None or isinstance(v, str), "a quantization type such as Q4_K_M")
    templates = read("templates", {}, _table_of(object), 'a table of "model id" = "template name"')
    for model, name in templates.items():
        if _is_name(name):  # one entry wrong is that entry's problem: the others still hold
            config.templates[model] = name
        else:
            config.problems.append(f"{path}: [templates] {model!r} should be a template name or a .jinja file; ignored")
    config.panes = read("panes", APP_PANES.start, _pane_count, f"a whole number from {APP_PANES[0]} to {APP_PANES[-1]}")
    limits = read("chat_template", {}, _positive_numbers, "a table of time_limit and max_output_mb, both above 0")
    unknown = sorted(set(limits) - {"time_limit", "max_output_mb"})
    if unknown:
        config.problems.append(f"{path}: [chat_template] has no setting {unknown[0]!r}; ignored")
    defaults = RenderLimits()
    config.render_limits = RenderLimits(
        seconds=float(limits.get("time_limit", defaults.seconds)),
        max_chars=int(limits.get("max_output_mb", defaults.max_chars / 1e6) * 1_000_000),
    )
    return config


#: the modifiers Textual writes before a key's name
KEY_MODIFIERS = ("ctrl", "shift", "alt", "meta", "super", "hyper")
#: a key as Textual names it: one character, or a lower-case name (``f10``, ``pageup``, ``question_mark``)
_KEY_NAME = re.compile(r"\S|[a-z][a-z0-9_]*")


def key_problem(keys: str) -> str | None:
    """Why a keymap value is not keys Textual can bind, or None. The value is keys separated by commas, each
    modifiers and a name joined by ``+`` (``ctrl+t``, ``f5``); checked here, without Textual, so that a
    wrong one is refused with a message rather than leaving its binding unreachable."""
    for key in keys.split(","):
        key = key.strip()
        *modifiers, name = key.split("+")
        if "" in modifiers or not _KEY_NAME.fullmatch(name):
            return f"{key!r} names no key" if key else "a key is empty"
        unknown = [modifier for modifier in modifiers if modifier not in KEY_MODIFIERS]
        if unknown:
            return f"{unknown[0]!r} is not a modifier (known: {', '.join(KEY_MODIFIERS)})"
    return None


def _list_of(kind: type) -> Callable[[Any], bool]:
    return lambda value: isinstance(value, list) and all(isinstance(item, kind) for item in value)


def _pane_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value in APP_PANES


def _is_name(value: Any) -> bool:
    """A name: one line of printable text (a template's name or a file's path)."""
    return isinstance(value, str) and 0 < len(value) <= 1000 and value.isprintable()


def _positive_numbers(value: Any) -> bool:
    numbers = value.values() if isinstance(value, dict) else [None]
    return all(isinstance(n, (int, float)) and not isinstance(n, bool) and 0 < n < 1e6 for n in numbers)


def _table_of(kind: type) -> Callable[[Any], bool]:
    return lambda value: isinstance(value, dict) and all(isinstance(item, kind) for item in value.values())


_THEME_LINE = re.compile(r"^theme\s*=.*$", re.MULTILINE)


def remember_theme(config: Config, theme: str) -> str | None:
    """Write ``theme`` into the config file, keeping everything else in it; a problem as text, or None.

    A file that did not parse is left alone: rewriting it could lose what the user meant.
    """
    config.theme = theme
    path = config.path
    line = f'theme = "{theme}"'
    text, problem = text_to_edit(path, "theme")
    if problem is not None:
        return problem
    # A top-level key must come before the first table.
    head, sep, tail = ("", "[", text[1:]) if text.startswith("[") else text.partition("\n[")
    if _THEME_LINE.search(head):
        head = _THEME_LINE.sub(line, head, count=1)
    else:
        head = f"{line}\n{head}" if head else line + "\n"
    return write_edited(path, head + sep + tail, "theme")


def text_to_edit(path: Path, what: str) -> tuple[str, str | None]:
    """The config file's text for an edit of ``what`` ("" when there is none yet), or why ``what`` is not saved:
    a file that cannot be read or does not parse is left alone, as rewriting it could lose what the user meant."""
    try:
        text = read_regular_text(path) if path.exists() else ""
        tomllib.loads(text)
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        return "", f"{what} not saved: {path} could not be read ({exc})"
    return text, None


def write_edited(path: Path, text: str, what: str) -> str | None:
    """Replace the config file with ``text`` (an edit of ``what``); why it was not saved, as text, or None."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(path, text)  # a full disk leaves the old config whole, never cut mid-key
    except FileWriteError as exc:
        return f"{what} not saved: {exc}"
    except OSError as exc:
        return f"{what} not saved: {path}: {exc.strerror or exc}"
    return None
