"""The session's whole-file writer: the one writer of ``zhbench.plain.file_writes``, which the engines use too
(the GGUF family's digest cache), named here where the session's modules have always found it."""

from __future__ import annotations

from zhbench.plain.file_writes import FileWriteError, write_atomically

__all__ = ["FileWriteError", "write_atomically"]
