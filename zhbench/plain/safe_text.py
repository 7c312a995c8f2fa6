"""Showing text from a model, a file or a person literally: control characters, escape sequences and
direction overrides become visible escapes and never act, on a screen, in a terminal or in an export."""

from __future__ import annotations

import json
import re
from typing import Any

# C0 controls but newline and tab, DEL, C1 controls (ESC starts ANSI sequences; CSI is U+009B), and the
# bidirectional marks, embeddings, overrides and isolates, which can reorder what a person reads (U+202E).
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
#: what ``visible_text`` escapes, and the line separators some readers split on (Python's str.splitlines)
_JSON_UNSAFE = re.compile("[\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029]")
#: Markdown's structural characters anywhere, and the ones that start a list, a heading or a rule on a line
_MARKDOWN_PUNCTUATION = re.compile(r"([\\`*_<>\[\]#|~&])")
_BULLET = re.compile(r"^([ \t]*)([-+=])", re.MULTILINE)
_ORDERED = re.compile(r"^([ \t]*\d+)([.)])", re.MULTILINE)


def visible_text(text: str) -> str:
    """``text`` with every control character but newline and tab written as an escape (``\\x1b``, ``\\u202e``)."""
    return _CONTROL.sub(_escape, text)


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def json_text(data: Any, *, indent: int | None = None) -> str:
    """JSON that keeps Chinese readable but writes every character that could act on a terminal or split
    a line as a ``\\uXXXX`` escape (json.dumps escapes only the C0 controls): the same data, safe to show."""
    dumped = json.dumps(data, ensure_ascii=False, indent=indent)
    return _JSON_UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", dumped)


def literal_markdown(text: str) -> str:
    """``text`` as Markdown that renders as exactly this text: no tags, comments, code, links, emphasis,
    headings or lists of its own (each structural character backslash-escaped), controls made visible."""
    escaped = _MARKDOWN_PUNCTUATION.sub(r"\\\1", visible_text(text))
    return _ORDERED.sub(r"\1\\\2", _BULLET.sub(r"\1\\\2", escaped))


def literal_quote(text: str) -> str:
    """``text`` as a Markdown quote that renders as exactly its text, whatever it holds (HTML, fences, comments)."""
    return "\n".join("> " + line if line else ">" for line in literal_markdown(text or "").split("\n"))
