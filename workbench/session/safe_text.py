"""Showing model text literally: control characters and escape sequences become visible, never act."""

from __future__ import annotations

import re

# C0 controls but newline and tab, DEL, and C1 controls (ESC starts ANSI sequences; CSI is U+009B).
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def visible_text(text: str) -> str:
    """``text`` with every control character but newline and tab written as an escape (``\\x1b``)."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)
