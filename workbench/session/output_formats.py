"""One table per output format: a registry maps a format's name to its writer, its file suffixes and a
one-line description, and the CLI's ``--format`` choices, the app's export and palette, and the writers
all read it, so a format added to the registry needs no other edit."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class OutputFormat(Generic[T]):
    """How one format is written: ``write`` turns the thing into the file's text."""

    write: Callable[[T], str]
    #: the file suffixes that name this format, the one its files are written with first
    suffixes: tuple[str, ...]
    #: what the format is, in a few words ("Markdown"), for help texts and the palette
    description: str

    @property
    def suffix(self) -> str:
        return self.suffixes[0]


def format_of_suffix(formats: dict[str, OutputFormat[T]], suffix: str, default: str) -> str:
    """The name of the format whose suffixes hold ``suffix`` (any case), else ``default``."""
    return next((name for name, form in formats.items() if suffix.lower() in form.suffixes), default)


def formats_help(formats: dict[str, OutputFormat[T]]) -> str:
    """The formats for a ``--format`` help text: ``md: Markdown; json: JSON``."""
    return "; ".join(f"{name}: {form.description}" for name, form in formats.items())


def writer_in(module: str, name: str) -> Callable[[Any], str]:
    """The writer ``name`` of ``module``, imported on its first use: a registry the CLI reads to build its
    ``--format`` choices then costs ``zhbench --help`` nothing."""

    def write(thing: Any) -> str:
        found: Callable[[Any], str] = getattr(importlib.import_module(module), name)
        return found(thing)

    return write
