"""A model repository served on 127.0.0.1 the way the Hugging Face hub's file API serves it, for the real
``huggingface_hub`` client pointed at it through ``HF_ENDPOINT``.

What huggingface_hub 2.x asks (``hf_api.py`` ``model_info``, ``file_download.py`` ``get_hf_file_metadata``
and ``http_get``):

* ``GET /api/models/OWNER/NAME/revision/REV?blobs=true``: ``{"id", "sha", "siblings": [{"rfilename", "size"}]}``;
  an unknown repository is a 404 with ``X-Error-Code: RepoNotFound``.
* ``HEAD /OWNER/NAME/resolve/REV/FILE``: ``X-Repo-Commit``, ``ETag`` and ``Content-Length``.
* ``GET`` of the same: the bytes, or from ``Range: bytes=N-`` on (206 with ``Content-Range``).

Every request is logged with its ``Range`` header; bodies can be throttled and connections dropped
(``loopback.LoopbackHub``).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from pathlib import Path

from tests.engines.hub.loopback import LoopbackHub

COMMIT = "0123456789abcdef0123456789abcdef01234567"


@dataclass
class FakeHub(LoopbackHub):
    """Repositories (``OWNER/NAME`` -> folder of files) served at ``url``."""

    repos: dict[str, Path]

    def route(self, handler: BaseHTTPRequestHandler, *, body: bool) -> None:
        parts = self.path_of(handler).strip("/").split("/")
        if parts[:2] == ["api", "models"]:
            self.note(handler)
            return self._info(handler, "/".join(parts[2:4]))
        if len(parts) >= 5 and parts[2] == "resolve":
            name = "/".join(parts[4:])
            self.note(handler, name)
            return self._file(handler, "/".join(parts[:2]), name, body=body)
        self.note(handler)
        self._error(handler, 404, "EntryNotFound")

    def _error(self, handler: BaseHTTPRequestHandler, status: int, code: str) -> None:
        self.send_json(handler, status, {"error": code}, {"X-Error-Code": code})

    def _info(self, handler: BaseHTTPRequestHandler, repo: str) -> None:
        folder = self.repos.get(repo)
        if folder is None:
            return self._error(handler, 404, "RepoNotFound")
        siblings = [
            {"rfilename": str(f.relative_to(folder)), "size": f.stat().st_size}
            for f in sorted(folder.rglob("*"))
            if f.is_file()
        ]
        self.send_json(handler, 200, {"id": repo, "sha": COMMIT, "siblings": siblings})

    def _file(self, handler: BaseHTTPRequestHandler, repo: str, name: str, *, body: bool) -> None:
        folder = self.repos.get(repo)
        target = folder / name if folder is not None else None
        if target is None or not target.is_file():
            return self._error(handler, 404, "EntryNotFound" if folder is not None else "RepoNotFound")
        data = target.read_bytes()
        headers = {"X-Repo-Commit": COMMIT, "ETag": f'"{hashlib.sha256(data).hexdigest()}"'}
        self.send_file(handler, name, data, headers, body=body)
