"""A model's chat template, rendered in Jinja's immutable sandbox within a time and an output-size limit.

The environment is the one transformers' ``apply_chat_template`` renders in (``chat_template_utils.
_cached_compile_jinja_template``): trimmed blocks, ``loopcontrols``, the ``{% generation %}`` tag, its
``tojson``, ``raise_exception``, ``strftime_now`` and its guarded ``dict`` and ``namespace``, so a template
renders here exactly as transformers renders it. On top of the sandbox, which keeps a template away from
Python's internals but not from the CPU or memory, every render is bounded:

- in time: a trace function on the rendering thread checks a deadline on each line the template's code
  runs (a loop that writes nothing still runs lines), so nested loops stop at the limit;
- in size: the output is counted as it is written, and ``*``, ``+`` and ``**`` refuse a result past the
  limit before (or as soon as) it is built, so ``'x' * 10**9`` never allocates its gigabyte.

Whatever goes wrong (a syntax error, ``raise_exception``, a sandbox violation, ``include``, an undefined
chain, a macro calling itself without end, a limit) is one ``ChatTemplateError`` line naming the model and
where its template came from. Any family rendering a chat template (from a tokenizer, a GGUF file's
metadata) uses ``ChatTemplate``.
"""

from __future__ import annotations

import json
import re
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from types import FrameType
from typing import TYPE_CHECKING, Any

from zhbench.engines.errors import ModelLoadError, ZhbenchError

if TYPE_CHECKING:
    from pathlib import Path

    import jinja2


@dataclass(frozen=True)
class RenderLimits:
    """How long one render may run and how much it may write (characters)."""

    seconds: float = 2.0
    max_chars: int = 4_000_000

    def __post_init__(self) -> None:
        if not (self.seconds > 0 and self.max_chars > 0):
            raise ValueError("render limits must be positive")


_limits = RenderLimits()


def set_render_limits(limits: RenderLimits) -> None:
    """The limits every later render in this process keeps (the config's ``[chat_template]``)."""
    global _limits
    _limits = limits


class ChatTemplateError(ZhbenchError):
    """A chat template that cannot be compiled or rendered: one line naming the model and the template."""

    def __init__(self, model: str, origin: str, reason: str) -> None:
        self.model, self.origin, self.reason = model, origin, reason
        super().__init__(f"{model}: its chat template ({origin}) {reason}")


class ChatTemplateNeeded(ModelLoadError):
    """A model file that carries no chat template (or names one that is not there): it loads once one of
    ``catalog`` (template name -> its source, so a caller can tell which one a model's own notes resemble) or
    a ``.jinja`` file is named for it."""

    def __init__(self, path: Path | str, reason: str, catalog: Mapping[str, str]) -> None:
        super().__init__(path, reason)
        self.catalog = dict(catalog)


#: the longest chat template file read (upstream ones run to some tens of kB)
MAX_TEMPLATE_FILE_BYTES = 1_000_000


def chat_template_file(path: Path, *, model: str) -> ChatTemplate:
    """The chat template in the file at ``path`` (a ``.jinja`` file the user named), for ``model``:
    ``OSError`` where it cannot be read (``NotAFileError`` for a FIFO or a device, refused without a read),
    ``ChatTemplateError`` where it is too long, not text, does not compile or never reads ``messages`` (any
    text compiles as a template: ``/etc/passwd`` would be the prompt, the conversation left out)."""
    import jinja2.meta

    from zhbench.engines.local.file_reads import open_regular

    with open_regular(path) as file:
        data = file.read(MAX_TEMPLATE_FILE_BYTES + 1)
    if len(data) > MAX_TEMPLATE_FILE_BYTES:
        raise ChatTemplateError(model, str(path), f"is over {MAX_TEMPLATE_FILE_BYTES // 1000} kB: no chat template")
    try:
        source = data.decode("utf-8")
    except UnicodeDecodeError:
        raise ChatTemplateError(model, str(path), "is not UTF-8 text: no chat template") from None
    template = ChatTemplate(source, model=model, origin=str(path))
    if "messages" not in jinja2.meta.find_undeclared_variables(_environment().parse(source)):
        raise ChatTemplateError(model, str(path), "never uses messages (the conversation): not a chat template")
    return template


class _LimitReached(BaseException):
    """A render past its limit. A BaseException, so that no ``except Exception`` on the way swallows it."""


class ChatTemplate:
    """A chat template compiled once (``ChatTemplateError`` for a syntax error), rendered with limits."""

    def __init__(self, source: str, *, model: str, origin: str) -> None:
        self.source, self.model, self.origin = source, model, origin
        try:
            self._compiled = _compile(source)
        except Exception as exc:  # TemplateSyntaxError, or a RecursionError on a template nested past the parser
            raise self._error(exc) from None

    def render(
        self,
        messages: Sequence[Mapping[str, Any]],
        *,
        add_generation_prompt: bool = True,
        limits: RenderLimits | None = None,
        **variables: Any,
    ) -> str:
        """The template's text for ``messages`` (as transformers passes them: ``tools`` and ``documents``
        none), the variables on top; ``ChatTemplateError`` past the limits or on any error in the template."""
        limits = limits or _limits
        context = {
            **variables,
            "messages": [dict(m) for m in messages],
            "tools": None,
            "documents": None,
            "add_generation_prompt": add_generation_prompt,
        }
        pieces: list[str] = []
        written = 0
        try:
            with _bounded(limits), closing(self._compiled.generate(context)) as chunks:  # type: ignore[type-var]
                for chunk in chunks:
                    written += len(chunk)
                    if written > limits.max_chars:
                        raise _LimitReached(_too_large(limits))
                    pieces.append(chunk)
        except _LimitReached as stop:
            raise ChatTemplateError(self.model, self.origin, str(stop)) from None
        except Exception as exc:
            raise self._error(exc) from None
        return "".join(pieces)

    def _error(self, exc: BaseException) -> ChatTemplateError:
        return ChatTemplateError(self.model, self.origin, _reason(exc))


# --- the limits ---------------------------------------------------------------------------------------

_TEMPLATE_FILE = "<template>"  # the file name Jinja compiles a template from a string under
_active = threading.local()  # the limits of the render running on this thread, read by the operators


def _too_large(limits: RenderLimits) -> str:
    return f"wrote more than {limits.max_chars:,} characters (the limit is [chat_template] max_output_mb in the config)"


@contextmanager
def _bounded(limits: RenderLimits) -> Iterator[None]:
    """Trace this thread's frames while the template renders, stopping it at the deadline."""
    deadline = time.monotonic() + limits.seconds
    message = f"was still rendering after {limits.seconds:g} s (the limit is [chat_template] time_limit in the config)"

    def on_line(frame: FrameType, event: str, arg: object) -> Callable[..., Any]:
        if time.monotonic() > deadline:
            raise _LimitReached(message)
        return on_line

    def trace(frame: FrameType, event: str, arg: object) -> Callable[..., Any] | None:
        """Each call is checked; the template's own code (Jinja names it ``<template>``) line by line,
        as its loops run there."""
        if time.monotonic() > deadline:
            raise _LimitReached(message)
        return on_line if frame.f_code.co_filename == _TEMPLATE_FILE else None

    previous = sys.gettrace()
    _active.limits = limits
    sys.settrace(trace)
    try:
        yield
    finally:
        sys.settrace(previous)
        _active.limits = None


def _checked_operation(operator: str, left: Any, right: Any) -> None:
    """Refuse ``*`` or ``**`` whose result would pass the output limit, before it is built."""
    limits: RenderLimits | None = getattr(_active, "limits", None)
    if limits is None:
        return
    if operator == "*":
        repeated = [(s, n) for s, n in ((left, right), (right, left)) if isinstance(s, (str, list, tuple))]
        too_large = any(isinstance(n, int) and len(s) * n > limits.max_chars for s, n in repeated)
    else:  # the power's size in bits, near enough
        powered = operator == "**" and isinstance(left, int) and isinstance(right, int) and abs(left) > 1
        too_large = powered and right * left.bit_length() > 8 * limits.max_chars
    if too_large:
        raise _LimitReached(_too_large(limits))


def _checked_result(result: Any) -> Any:
    limits: RenderLimits | None = getattr(_active, "limits", None)
    if limits is not None and isinstance(result, (str, list, tuple)) and len(result) > limits.max_chars:
        raise _LimitReached(_too_large(limits))
    return result


# --- the environment (transformers' own, bounded) -------------------------------------------------------


@lru_cache(maxsize=16)
def _compile(source: str) -> jinja2.Template:
    return _environment().from_string(source)


@lru_cache(maxsize=1)
def _environment() -> jinja2.Environment:
    import jinja2
    import jinja2.ext
    from jinja2 import nodes
    from jinja2.compiler import CodeGenerator, Frame
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    class BoundedCodeGenerator(CodeGenerator):
        """Joins with ``~`` are checked as ``+`` is (the sandbox intercepts operators, not ``~``)."""

        def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:
            self.write("environment.checked_result(")
            super().visit_Concat(node, frame)
            self.write(")")

    class BoundedSandbox(ImmutableSandboxedEnvironment):
        code_generator_class = BoundedCodeGenerator
        intercepted_binops = frozenset({"*", "+", "**"})
        checked_result = staticmethod(_checked_result)

        def call_binop(self, context: jinja2.runtime.Context, operator: str, left: Any, right: Any) -> Any:
            _checked_operation(operator, left, right)
            return _checked_result(super().call_binop(context, operator, left, right))

    class GenerationTag(jinja2.ext.Extension):
        """``{% generation %}…{% endgeneration %}`` renders its body (transformers marks the assistant's
        part with it for training masks; a prompt needs only the text)."""

        tags = {"generation"}  # noqa: RUF012 (Jinja's own declaration)

        def parse(self, parser: jinja2.parser.Parser) -> nodes.Node:
            lineno = next(parser.stream).lineno
            body = parser.parse_statements(("name:endgeneration",), drop_needle=True)
            return nodes.CallBlock(self.call_method("_body"), [], [], body).set_lineno(lineno)

        def _body(self, caller: Callable[[], str]) -> str:
            return caller()

    class TemplateDict:
        """``dict(...)`` without the type itself (no ``dict.__class__`` to climb from)."""

        def __call__(self, *args: Any, **kwargs: Any) -> dict[Any, Any]:
            return dict(*args, **kwargs)

        def fromkeys(self, *args: Any, **kwargs: Any) -> dict[Any, Any]:
            return dict.fromkeys(*args, **kwargs)

    class TemplateNamespace(jinja2.utils.Namespace):
        """``namespace(...)`` refusing underscore-prefixed attributes, as transformers' does."""

        def __init__(*args: Any, **kwargs: Any) -> None:  # Jinja's signature trick: namespace(self=...) works
            self, rest = args[0], args[1:]
            attrs = dict(*rest, **kwargs)
            for name in attrs:
                _check_name(name)
            jinja2.utils.Namespace.__init__(self, attrs)

        def __setitem__(self, name: str, value: Any) -> None:
            _check_name(name)
            jinja2.utils.Namespace.__setitem__(self, name, value)

    def _check_name(name: object) -> None:
        if isinstance(name, str) and name.startswith("_"):
            raise jinja2.exceptions.SecurityError(f"a namespace may not hold {name!r} (underscore-prefixed)")

    def raise_exception(message: str) -> None:
        raise jinja2.exceptions.TemplateError(message)

    def tojson(
        x: Any, ensure_ascii: bool = False, indent: int | None = None, separators: Any = None, sort_keys: bool = False
    ) -> str:
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)

    def strftime_now(format: str) -> str:
        return datetime.now().strftime(format)

    environment = BoundedSandbox(
        trim_blocks=True, lstrip_blocks=True, extensions=[GenerationTag, jinja2.ext.loopcontrols]
    )
    environment.filters["tojson"] = tojson
    environment.globals.update(
        raise_exception=raise_exception, strftime_now=strftime_now, dict=TemplateDict(), namespace=TemplateNamespace
    )
    return environment


# --- one line for what went wrong ---------------------------------------------------------------------

_SPACE = re.compile(r"\s+")
_REASON_CHARS = 300


def _reason(exc: BaseException) -> str:
    """What went wrong, on one line: the template's own message, where in the template, and what kind."""
    import jinja2

    line = getattr(exc, "lineno", None) or _template_line(exc)
    where = f" at line {line}" if line else ""
    text = _SPACE.sub(" ", str(exc)).strip()
    if len(text) > _REASON_CHARS:
        text = text[:_REASON_CHARS] + "…"
    if isinstance(exc, jinja2.TemplateSyntaxError):
        return f"does not compile{where}: {text}"
    if isinstance(exc, RecursionError):
        return f"calls itself without end{where} (Python's recursion limit)"
    if isinstance(exc, jinja2.exceptions.SecurityError):
        return f"did what the sandbox forbids{where}: {text}"
    if isinstance(exc, jinja2.UndefinedError):
        return f"reads something undefined{where}: {text}"
    if type(exc) is jinja2.TemplateError:  # raise_exception: the template's own refusal
        return f"refused the conversation{where}: {text}"
    return f"failed{where}: {type(exc).__name__}: {text}"


def _template_line(exc: BaseException) -> int | None:
    """The template line Jinja's rewritten traceback points at last (its frames are named ``<template>``)."""
    found = None
    for frame, line in traceback.walk_tb(exc.__traceback__):
        if frame.f_code.co_filename == _TEMPLATE_FILE:
            found = line
    return found
