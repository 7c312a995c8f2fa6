"""Errors the engine core raises, each carrying one line a person can act on."""

from __future__ import annotations

from pathlib import Path

from zhbench.plain.errors import ZhbenchError as ZhbenchError  # the base, below every room


class ModelNotFoundError(ZhbenchError):
    """A model spec is neither an existing path nor a hub id present in a local cache."""


class ModelLoadError(ZhbenchError):
    """A model folder or file exists but cannot be loaded (missing, broken or misshapen files)."""

    def __init__(self, path: Path | str, reason: str) -> None:
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")

    def reason_within(self, folder: Path) -> str:
        """The reason, naming the file where it is not ``folder`` itself (for a row that shows the folder)."""
        return self.reason if self.path == folder else f"{self.path.name}: {self.reason}"


class UnsafeCheckpointError(ModelLoadError):
    """A pickled checkpoint would run code when unpickled; it was refused before any of it ran."""


class UnknownFamilyError(ZhbenchError):
    """No family matches a model folder, or a family name is not known."""


class HistoryError(ZhbenchError):
    """A chat history is malformed (wrong shape, wrong roles, not ending with the user)."""


class GenerationError(ZhbenchError):
    """Generating a reply failed part-way; ``partial`` holds what was generated before the failure."""

    def __init__(self, message: str, partial: object) -> None:
        super().__init__(message)
        self.partial = partial


class RemoteError(ZhbenchError):
    """A model server could not be reached or refused a request; the line names the server (never its key)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        #: the HTTP status the server answered with, if it answered
        self.status = status
