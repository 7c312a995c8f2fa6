"""A model repository served on 127.0.0.1 the way ModelScope's legacy ``/api/v1`` serves it, for the real
``modelscope`` client (modelscope-hub underneath) pointed at it through ``MODELSCOPE_ENDPOINT``.

What modelscope 1.40 / modelscope-hub 0.5 ask (``modelscope_hub/_legacy_api.py`` ``list_repo_files`` and
``download_stream``, ``_download.py`` ``_download_with_resume``):

* ``GET /api/v1/models/OWNER/NAME/repo/files?Revision=R&Recursive=True``: the envelope
  ``{"Code": 200, "Data": {"Files": [{"Name", "Path", "Type": "blob"|"tree", "Size", "Sha256"}]}, "Success": true}``,
  folders listed as ``tree`` entries beside the files; an unknown repository is a 404 whose envelope carries
  ``Code`` 10010205001 and ``Success`` false.
* ``GET /api/v1/models/OWNER/NAME/repo?Revision=R&FilePath=FILE``: the bytes, or from ``Range: bytes=N-`` on
  (206 with ``Content-Range``); the client checks them against the listing's size and ``Sha256``.
* Anything else (the client's probe of ``/api/v1/repos/internalAccelerationInfo``, made outside Alibaba's
  cloud too) is a 404.

Every request is logged with its ``Range`` header; bodies can be throttled and connections dropped
(``loopback.LoopbackHub``).
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from tests.engines.hub.loopback import LoopbackHub

#: the envelope's code for a repository that does not exist (or that the caller may not read)
NOT_FOUND_CODE = 10010205001


@dataclass
class FakeModelScope(LoopbackHub):
    """Repositories (``OWNER/NAME`` -> folder of files) served at ``url``."""

    repos: dict[str, Path]

    def route(self, handler: BaseHTTPRequestHandler, *, body: bool) -> None:
        parts = self.path_of(handler).strip("/").split("/")
        query = parse_qs(urlsplit(handler.path).query)
        if parts[:3] == ["api", "v1", "models"] and len(parts) == 7 and parts[5:] == ["repo", "files"]:
            self.note(handler)
            return self._listing(handler, "/".join(parts[3:5]))
        if parts[:3] == ["api", "v1", "models"] and len(parts) == 6 and parts[5] == "repo" and "FilePath" in query:
            name = query["FilePath"][0]
            self.note(handler, name)
            return self._file(handler, "/".join(parts[3:5]), name, body=body)
        self.note(handler)
        self._error(handler, 404, 404, "not found")

    def _error(self, handler: BaseHTTPRequestHandler, status: int, code: int, message: str) -> None:
        envelope = {"Code": code, "Message": message, "RequestId": str(uuid.uuid4()), "Success": False}
        self.send_json(handler, status, envelope)

    def _listing(self, handler: BaseHTTPRequestHandler, repo: str) -> None:
        folder = self.repos.get(repo)
        if folder is None:
            return self._error(handler, 404, NOT_FOUND_CODE, "获取模型目录树失败，信息：record not found")
        entries = []
        for path in sorted(folder.rglob("*")):
            name = str(path.relative_to(folder))
            if path.is_dir():
                entries.append({"Name": path.name, "Path": name, "Type": "tree", "Size": 0})
            else:
                sha256 = hashlib.sha256(path.read_bytes()).hexdigest()
                entries.append(
                    {"Name": path.name, "Path": name, "Type": "blob", "Size": path.stat().st_size, "Sha256": sha256}
                )
        self.send_json(handler, 200, {"Code": 200, "Data": {"Files": entries}, "Message": "success", "Success": True})

    def _file(self, handler: BaseHTTPRequestHandler, repo: str, name: str, *, body: bool) -> None:
        folder = self.repos.get(repo)
        target = folder / name if folder is not None else None
        if target is None or not target.is_file():
            return self._error(handler, 404, NOT_FOUND_CODE, "record not found")
        self.send_file(handler, name, target.read_bytes(), {}, body=body)
