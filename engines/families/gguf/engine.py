"""A GGUF file run in this process by llama.cpp, through its own Python binding (``llama-cpp-python``).

The prompt is the file's chat template (``tokenizer.chat_template``) rendered by zhbench's sandboxed
renderer (``engines.local.chat_render``) with the messages and variables the chat-template family gives it
(``engines.local.chat_rules``), then tokenized by llama.cpp with special tokens parsed, as llama.cpp's own
server does. Decoding is llama.cpp's ``Llama.generate`` with the sampler ``create_completion`` builds, one
token at a time so that a reply stops within one token; llama.cpp keeps the key/value cache of the turn
before and reuses it for the prefix the two prompts share. A reply ends at any id llama.cpp counts as an
end of generation (the header's end of sequence, of turn, of message, and the tokens llama.cpp adds to them
by their text).

``llama_cpp`` is imported only when a model loads; without the ``gguf`` extra, loading says what to install.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import threading
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from zhbench.engines.api import FamilySpec, LoadOptions
from zhbench.engines.context import fit_messages, keep_tail_that_fits, prompt_budget
from zhbench.engines.errors import ModelLoadError, ZhbenchError
from zhbench.engines.families.gguf import memory
from zhbench.engines.families.gguf.metadata import GGUFHeader, looks_like_gguf, read_header
from zhbench.engines.families.gguf.sha256 import file_sha256
from zhbench.engines.local.chat_render import ChatTemplate, ChatTemplateNeeded, chat_template_file
from zhbench.engines.local.chat_rules import (
    DEFAULT_MAX_NEW_TOKENS,
    ChatTemplateParams,
    chat_messages,
    prompt_opens_thinking,
    settled_reasoning,
    split_reasoning,
    template_variables,
)
from zhbench.engines.local.devices import available_ram_bytes
from zhbench.engines.local.file_reads import NotAFileError
from zhbench.engines.local.token_engine import Generation, TokenEngine
from zhbench.engines.types import ContextFit, GenerationParams, Message, Prompt

if TYPE_CHECKING:
    from llama_cpp import Llama

INSTALL_HINT = (
    "GGUF models need llama-cpp-python: pip install -e '.[gguf]' in zhbench's checkout (it builds llama.cpp: "
    "about 20 minutes on 2 cores; see the README for a CUDA or Metal build)"
)
#: llama.cpp's own decoding defaults (``Llama.create_completion``; ``common/common.h``'s sampling params)
LLAMA_CPP_DEFAULTS = {"temp": 0.8, "top_k": 40, "top_p": 0.95, "min_p": 0.05, "penalty_repeat": 1.0}
#: the smallest context a model is opened with, whatever the memory estimate says
MIN_CONTEXT = 512
#: the share of the memory available at load that the weights and the key/value cache may take
MEMORY_SHARE = 0.75
#: where a template given by name comes from (``--template NAME``): templates of the families llama.cpp's
#: converter meets without one (an Ollama model's template lives in its Modelfile, as a Go template)
CATALOG_DIR = Path(__file__).with_name("templates")


@dataclass(frozen=True)
class GGUFParams(ChatTemplateParams):
    """The chat-template settings, with llama.cpp's ``min_p`` (0: off), which its default sampler applies."""

    min_p: float = LLAMA_CPP_DEFAULTS["min_p"]

    def problems(self) -> dict[str, str]:
        found = super().problems()
        if not 0 <= self.min_p <= 1:
            found.setdefault("min_p", "min_p must be from 0 to 1 (0: off)")
        return found


class GGUFGeneration(Generation):
    """One reply: llama.cpp's generator over the prompt's ids, its ``<think>`` part kept apart."""

    def __init__(self, engine: GGUFEngine, prompt: Prompt, params: GGUFParams, cancel: threading.Event) -> None:
        super().__init__(prompt)
        self.engine, self.params, self.cancel = engine, params, cancel
        self.opened = prompt_opens_thinking(prompt.text)
        self.reused = engine.cached_prefix(prompt.input_ids)

    @property
    def fed_tokens(self) -> int:
        return len(self.prompt.input_ids) - self.reused

    def tokens(self) -> Iterator[int]:
        llama, params = self.engine.llama, self.params
        llama.set_seed(params.seed if params.seed is not None else 0)
        generator = llama.generate(
            self.prompt.input_ids,
            temp=0.0 if params.greedy else params.temperature,
            top_k=params.top_k,
            top_p=params.top_p,
            min_p=params.min_p,
            repeat_penalty=params.repetition_penalty,
        )
        try:
            # the reply stops where llama.cpp's context ends (the prompt's budget leaves it room)
            while not self.cancel.is_set() and llama.n_tokens < self.engine.n_ctx:
                token = next(generator, None)
                if token is None:
                    return
                yield token
        finally:
            generator.close()

    def text(self, reply_ids: Sequence[int]) -> str:
        raw = self.engine.llama.detokenize(list(reply_ids), prev_tokens=self.prompt.input_ids)
        return raw.decode("utf-8", errors="ignore")  # as create_completion shows it

    def split(self, text: str) -> tuple[str, str]:
        return split_reasoning(text, opened=self.opened)

    def streamable(self, text: str) -> str:
        return settled_reasoning(text, opened=self.opened)


class GGUFEngine(TokenEngine):
    family: ClassVar[str] = "gguf"

    def __init__(
        self, path: Path, header: GGUFHeader, llama: Llama, device: str, template: ChatTemplate, template_origin: str
    ) -> None:
        super().__init__(path, device, header.quantization)
        self.header, self.llama, self.template = header, llama, template
        self.template_origin = template_origin
        self.n_ctx: int = llama.n_ctx()
        self.end_ids = _end_ids(llama, header)
        self.sha256 = file_sha256(path)
        self._defaults, self.defaults_source = _defaults(header, path)

    # --- loading --------------------------------------------------------------------------------------

    @classmethod
    def matches_layout(cls, path: Path) -> bool:
        return path.is_file() and looks_like_gguf(path)

    @classmethod
    def load(cls, path: Path, options: LoadOptions) -> GGUFEngine:
        header = read_header(path)
        template, origin = _template(path, header, options.extra.get("template"))
        device = options.device or "cpu"
        if device not in ("cpu", "cuda") and not device.startswith("cuda:"):
            raise ModelLoadError(path, f"a GGUF model runs on cpu or cuda, not {device}")
        if options.dtype not in (None, header.quantization):
            raise ModelLoadError(
                path, f"a GGUF file runs in its own quantization ({header.quantization}), not {options.dtype}"
            )
        llama = _open(path, header, device, _context(path, header, options))
        return cls(path, header, llama, device, template, origin)

    # --- what the header and llama.cpp say ------------------------------------------------------------

    def parameter_count(self) -> int:
        return self.header.parameter_count

    def weight_bytes(self) -> int:
        """What llama.cpp holds for the model: its weights (llama.cpp's own figure) and the key/value cache
        it allocated at load for ``n_ctx`` positions."""
        import llama_cpp

        weights = int(llama_cpp.llama_model_size(self.llama.model))
        return weights + (self.header.kv_cache_bytes(self.n_ctx) or 0)

    def details(self) -> dict[str, str]:
        return {
            "quantization": self.header.quantization,
            "sha256": self.sha256,
            "architecture": self.header.architecture,
            "n_ctx": str(self.n_ctx),
            "chat_template": self.template_origin,
        }

    def computes_on_cpu(self) -> bool:
        """No: llama.cpp runs its own thread team (``cpu_cores()`` threads). Taking part in ``CPU_SHARE``
        would import torch and set its thread count, and torch's OpenMP runtime then competes with
        llama.cpp's for the cores: decoding measured 0.7 s/token against 0.03 for llama.cpp alone."""
        return False

    def _compute_place(self) -> contextlib.AbstractContextManager[object]:
        """llama.cpp places its own work (its threads, or the GPU layers it offloads): no torch stream."""
        return contextlib.nullcontext()

    def cached_prefix(self, ids: Sequence[int]) -> int:
        """How many of ``ids`` llama.cpp's cache already holds (its ``generate`` re-feeds one when it holds all)."""
        same = int(self.llama.longest_token_prefix(self.llama._input_ids.tolist(), ids))
        return max(0, same - 1) if same == len(ids) else same

    def forget_conversation(self) -> None:
        """Drop what llama.cpp's cache holds: the next reply runs its whole prompt."""
        with self._reply_lock:
            self.llama.reset()

    # --- settings -------------------------------------------------------------------------------------

    def default_params(self) -> GGUFParams:
        return self._defaults

    def presets(self) -> dict[str, GenerationParams]:
        """The model's own settings, named by where they came from, and greedy decoding."""
        return {self.defaults_source: self._defaults, "greedy": self._defaults.with_overrides({"greedy": True})}

    # --- prompts --------------------------------------------------------------------------------------

    def build_prompt(self, history: list[Message], params: GenerationParams) -> Prompt:
        """The template over the system prompt and the history, tokenized by llama.cpp. A conversation longer
        than the context drops its oldest exchanges (the system prompt and the newest question stay), then
        the start of an overlong newest message, as the other families do."""
        settings = _chat_params(params)
        budget = prompt_budget(self.n_ctx, params.max_new_tokens)

        def fits(messages: Sequence[Message]) -> bool:
            return len(self._ids(self._render(messages, settings))) <= budget

        kept = fit_messages(history, fits)
        truncated = not fits(kept)
        if truncated:
            older, last = kept[:-1], kept[-1]
            content = keep_tail_that_fits(
                last["content"], lambda text: fits([*older, {"role": "user", "content": text}])
            )
            kept = [*older, {"role": "user", "content": content}]
        text = self._render(kept, settings)
        return Prompt(text, self._ids(text), fit=ContextFit(self.n_ctx, len(history) - len(kept), truncated))

    def _render(self, history: Sequence[Message], settings: ChatTemplateParams) -> str:
        """The template's text, given the special tokens llama.cpp's server gives it (``bos_token``,
        ``eos_token``) and the thinking switch where the template reads it."""
        variables: dict[str, Any] = {
            **_special_tokens(self.llama, self.header),
            **template_variables(self.template.source, settings),
        }
        return self.template.render(chat_messages(history, settings.system_prompt), **variables)

    def _ids(self, text: str) -> list[int]:
        """llama.cpp's ids for the rendered text, special tokens parsed, nothing added (the template writes
        any beginning-of-sequence token itself)."""
        return list(self.llama.tokenize(text.encode("utf-8"), add_bos=False, special=True))

    def start_generation(self, prompt: Prompt, params: GenerationParams, cancel: threading.Event) -> Generation:
        return GGUFGeneration(self, prompt, _gguf_params(params), cancel)


# --- loading --------------------------------------------------------------------------------------------


def _llama_cpp() -> Any:
    try:
        import llama_cpp
    except ImportError:
        raise ZhbenchError(INSTALL_HINT) from None
    _quiet_logs(llama_cpp)
    return llama_cpp


#: llama.cpp's last log lines, kept (never printed: they would be drawn over the app) to say why a load failed
_LOG: deque[str] = deque(maxlen=64)
_log_callback: Any = None


def _quiet_logs(llama_cpp: Any) -> None:
    """Route llama.cpp's log into ``_LOG`` instead of stderr (once per process)."""
    global _log_callback
    if _log_callback is not None:
        return

    _log_callback = llama_cpp.llama_log_callback(_keep_log)  # ctypes calls it from C: it must outlive this function
    llama_cpp.llama_log_set(_log_callback, ctypes.c_void_p(0))


def _keep_log(level: int, text: bytes, user_data: ctypes.c_void_p) -> None:
    _LOG.append(text.decode("utf-8", errors="replace"))


def cpu_cores() -> int:
    """The cores this process may run on: llama.cpp's threads for one model."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _open(path: Path, header: GGUFHeader, device: str, n_ctx: int) -> Llama:
    llama_cpp = _llama_cpp()
    if device != "cpu" and not llama_cpp.llama_supports_gpu_offload():
        raise ModelLoadError(path, "this llama-cpp-python build runs on the CPU only (see the README for a CUDA build)")
    _LOG.clear()
    try:
        llama: Llama = llama_cpp.Llama(
            str(path),
            n_ctx=n_ctx,
            n_batch=min(512, n_ctx),
            n_threads=cpu_cores(),
            n_threads_batch=cpu_cores(),
            n_gpu_layers=0 if device == "cpu" else -1,
            main_gpu=int(device.partition(":")[2] or 0),
            verbose=False,
        )
    except (ValueError, RuntimeError) as exc:
        raise ModelLoadError(path, _load_failure(header, exc)) from None
    return llama


def _load_failure(header: GGUFHeader, exc: Exception) -> str:
    """One line on why llama.cpp refused the file, from its own log."""
    said = " ".join(line.strip() for line in _LOG if "error" in line.lower() or "failed" in line.lower())
    if "unknown model architecture" in said:
        return f"architecture {header.architecture!r} is not one this llama.cpp build knows (update llama-cpp-python)"
    reason = said.split("error loading model:")[-1].strip() if said else str(exc)
    return f"llama.cpp cannot load it: {reason[:300]}"


def _context(path: Path, header: GGUFHeader, options: LoadOptions) -> int:
    """Positions to open the model with: the load's ``n_ctx``, else the context the memory estimate counts
    (the trained one, capped as for the other families), lowered where the memory available now would not
    hold the weights and that key/value cache."""
    asked = options.extra.get("n_ctx")
    if asked is not None and not (asked.isdigit() and int(asked) > 0):
        raise ZhbenchError(f"n_ctx must be a whole number above 0, not {asked!r}")
    positions = memory.estimate_memory(path, options, None).context
    per_position, available = header.kv_cache_bytes(1), available_ram_bytes()
    if asked is not None or not per_position or available is None:
        return positions
    room = int(available * MEMORY_SHARE) - header.tensor_bytes
    return max(min(positions, room // per_position // 256 * 256), min(positions, MIN_CONTEXT))


def _template(path: Path, header: GGUFHeader, asked: str | None) -> tuple[ChatTemplate, str]:
    """The chat template to render: ``asked`` (a catalog name or a .jinja file), else the file's own."""
    if asked is not None:
        named = CATALOG_DIR / f"{asked}.jinja"
        if named.is_file():
            origin = f"catalog {asked}"
            return ChatTemplate(named.read_text(encoding="utf-8"), model=path.name, origin=origin), origin
        source = Path(asked).expanduser()
        if not source.exists():
            raise ChatTemplateNeeded(
                path,
                f"no chat template {asked!r} (known: {', '.join(catalog_templates())}, or a .jinja file)",
                _catalog(),
            )
        try:
            return chat_template_file(source, model=path.name), str(source)
        except NotAFileError as exc:  # a FIFO, a device, a folder: said as what it is
            raise ChatTemplateNeeded(path, f"chat template {exc}", _catalog()) from None
        except OSError as exc:
            raise ChatTemplateNeeded(path, f"chat template {source}: {exc.strerror or exc}", _catalog()) from None
    if not header.chat_template:
        raise ChatTemplateNeeded(
            path,
            "has no chat template in its metadata (tokenizer.chat_template); give one with --template NAME "
            f"({', '.join(catalog_templates())}) or --template FILE.jinja, or name one for it in the config's "
            "[templates]",
            _catalog(),
        )
    origin = "tokenizer.chat_template"
    return ChatTemplate(header.chat_template, model=path.name, origin=origin), origin


def catalog_templates() -> list[str]:
    """The names ``--template`` takes."""
    return sorted(file.stem for file in CATALOG_DIR.glob("*.jinja"))


def _catalog() -> dict[str, str]:
    """Each catalog template's source, by name."""
    return {name: (CATALOG_DIR / f"{name}.jinja").read_text(encoding="utf-8") for name in catalog_templates()}


def _end_ids(llama: Llama, header: GGUFHeader) -> frozenset[int]:
    """Every id llama.cpp ends a generation at (``llama_vocab_is_eog``: the header's ids and those llama.cpp
    adds by their text, such as ``<|im_end|>``), with the header's own."""
    import llama_cpp

    vocab = llama._model.vocab
    found = {i for i in range(llama.n_vocab()) if llama_cpp.llama_vocab_is_eog(vocab, i)}
    return frozenset(found | header.end_ids)


def _special_tokens(llama: Llama, header: GGUFHeader) -> dict[str, str]:
    import llama_cpp

    vocab = llama._model.vocab
    found = {}
    for name, index in (("bos_token", header.bos_id), ("eos_token", header.integer("tokenizer.ggml.eos_token_id"))):
        if index is not None and 0 <= index < llama.n_vocab():
            found[name] = llama_cpp.llama_vocab_get_text(vocab, index).decode("utf-8", errors="replace")
    return found


# --- settings -------------------------------------------------------------------------------------------


def _defaults(header: GGUFHeader, path: Path) -> tuple[GGUFParams, str]:
    """The model's decoding settings and where they came from: the header's recommended sampling
    (``general.sampling.*``), else the ``generation_config.json`` of the model repo the file sits in, else
    llama.cpp's own defaults."""
    sampling = header.sampling
    if sampling:
        source, values = "general.sampling", {**LLAMA_CPP_DEFAULTS, **sampling}
        greedy = False
    elif (path.parent / "generation_config.json").is_file():
        config = _read_generation_config(path.parent / "generation_config.json")
        source = "generation_config.json"
        values = {
            **LLAMA_CPP_DEFAULTS,
            **{
                key: config[name]
                for key, name in (("temp", "temperature"), ("top_k", "top_k"), ("top_p", "top_p"), ("min_p", "min_p"))
                if isinstance(config.get(name), (int, float))
            },
        }
        if isinstance(config.get("repetition_penalty"), (int, float)):
            values["penalty_repeat"] = config["repetition_penalty"]
        greedy = config.get("do_sample") is False
    else:
        source, values, greedy = "llama.cpp-defaults", dict(LLAMA_CPP_DEFAULTS), False

    def number(key: str) -> float:
        value = values.get(key)
        return (
            float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else LLAMA_CPP_DEFAULTS[key]
        )

    params = GGUFParams(
        temperature=number("temp") or LLAMA_CPP_DEFAULTS["temp"],
        top_k=int(number("top_k")),
        top_p=number("top_p"),
        min_p=number("min_p"),
        repetition_penalty=number("penalty_repeat"),
        max_new_tokens=DEFAULT_MAX_NEW_TOKENS,
        greedy=greedy or number("temp") == 0,
    )
    return params, source


def _read_generation_config(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelLoadError(path, f"cannot read: {exc}") from None
    return data if isinstance(data, dict) else {}


def _chat_params(params: GenerationParams) -> ChatTemplateParams:
    return params if isinstance(params, ChatTemplateParams) else _gguf_params(params)


def _gguf_params(params: GenerationParams) -> GGUFParams:
    """The family's settings from any params: generic ones keep their values, its own take their defaults."""
    if isinstance(params, GGUFParams):
        return params
    return GGUFParams().with_overrides(params.to_dict())


FAMILY = FamilySpec(
    name=GGUFEngine.family,
    summary="a GGUF file (llama.cpp's format: Ollama, LM Studio, -GGUF repos), run by llama.cpp in this process",
    matches_layout=GGUFEngine.matches_layout,
    load=GGUFEngine.load,
    name_hints=("gguf",),
    load_options={
        "template": "a chat template for a file that has none: a catalog name or a .jinja file",
        "n_ctx": "context positions (default: the model's trained context, capped by the memory available)",
    },
    standin="zhbench.engines.standins.gguf:write_gguf_standin",
    standin_formats=("gguf",),
    estimate_memory=memory.estimate_memory,
    fallbacks=memory.fallbacks,
    facts=memory.facts,
    standin_options={
        "quant": "the tensor type: f32, f16 or q8_0 (default q8_0)",
        "template": "a .jinja chat template file (default: ChatML, as Qwen2.5 writes it)",
        "tokenizer": "a folder whose tokenizer files the stand-in takes (default: a small one trained here)",
    },
)
