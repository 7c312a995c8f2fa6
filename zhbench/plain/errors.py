"""The one base of every error zhbench raises on purpose, below every room so that any of them can raise it
(the engines' errors, the session's and the plain helpers' own derive from it)."""

from __future__ import annotations


class ZhbenchError(Exception):
    """Base class: the message is one clear line naming the problem (and the file, where there is one)."""
