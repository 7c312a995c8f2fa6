"""A model repository served on 127.0.0.1 the way the Hugging Face hub's file API serves it, for the real
``huggingface_hub`` client pointed at it through ``HF_ENDPOINT``.

What huggingface_hub 2.x asks (``hf_api.py`` ``model_info``, ``file_download.py`` ``get_hf_file_metadata``
and ``http_get``):

* ``GET /api/models/OWNER/NAME/revision/REV?blobs=true``: ``{"id", "sha", "siblings": [{"rfilename", "size"}]}``;
  an unknown repository is a 404 with ``X-Error-Code: RepoNotFound``.
* ``HEAD /OWNER/NAME/resolve/REV/FILE``: ``X-Repo-Commit``, ``ETag`` and ``Content-Length``.
* ``GET`` of the same: the bytes, or from ``Range: bytes=N-`` on (206 with ``Content-Range``).

Every request is logged with its ``Range`` header; bodies can be throttled and connections dropped.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

COMMIT = "0123456789abcdef0123456789abcdef01234567"


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    range: str | None


@dataclass
class FakeHub:
    """Repositories (``OWNER/NAME`` -> folder of files) served at ``url``."""

    repos: dict[str, Path]
    #: bytes per second for files bigger than ``throttle_above`` (None: full speed)
    bytes_per_s: int | None = None
    throttle_above: int = 1_000_000
    #: file names whose next GET is cut after this many bytes (the connection dropped), once each
    drop_after: dict[str, int] = field(default_factory=dict)
    #: file names whose every GET is cut before any byte
    always_drop: set[str] = field(default_factory=set)
    log: list[Request] = field(default_factory=list)
    sent: dict[str, int] = field(default_factory=dict)  # body bytes sent per file

    def start(self) -> FakeHub:
        hub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:  # quiet
                pass

            def do_HEAD(self) -> None:
                hub._serve(self, body=False)

            def do_GET(self) -> None:
                hub._serve(self, body=True)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def gets(self, name: str) -> list[Request]:
        """The GET requests of the file ``name``."""
        return [r for r in self.log if r.method == "GET" and r.path.endswith("/" + name)]

    # --- serving ----------------------------------------------------------------------------------

    def _serve(self, handler: BaseHTTPRequestHandler, *, body: bool) -> None:
        path = unquote(urlsplit(handler.path).path)
        self.log.append(Request(handler.command, path, handler.headers.get("Range")))
        parts = path.strip("/").split("/")
        if parts[:2] == ["api", "models"]:
            repo = "/".join(parts[2:4])
            return self._info(handler, repo)
        if len(parts) >= 5 and parts[2] == "resolve":
            return self._file(handler, "/".join(parts[:2]), "/".join(parts[4:]), body=body)
        self._error(handler, 404, "EntryNotFound")

    def _error(self, handler: BaseHTTPRequestHandler, status: int, code: str) -> None:
        data = json.dumps({"error": code}).encode()
        handler.send_response(status)
        handler.send_header("X-Error-Code", code)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)

    def _info(self, handler: BaseHTTPRequestHandler, repo: str) -> None:
        folder = self.repos.get(repo)
        if folder is None:
            return self._error(handler, 404, "RepoNotFound")
        siblings = [
            {"rfilename": str(f.relative_to(folder)), "size": f.stat().st_size}
            for f in sorted(folder.rglob("*"))
            if f.is_file()
        ]
        data = json.dumps({"id": repo, "sha": COMMIT, "siblings": siblings}).encode()
        handler.send_response(200)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)

    def _file(self, handler: BaseHTTPRequestHandler, repo: str, name: str, *, body: bool) -> None:
        folder = self.repos.get(repo)
        target = folder / name if folder is not None else None
        if target is None or not target.is_file():
            return self._error(handler, 404, "EntryNotFound" if folder is not None else "RepoNotFound")
        data = target.read_bytes()
        start = 0
        asked = handler.headers.get("Range")
        if body and asked and asked.startswith("bytes="):
            start = int(asked.removeprefix("bytes=").split("-")[0])
        handler.send_response(206 if start else 200)
        handler.send_header("X-Repo-Commit", COMMIT)
        handler.send_header("ETag", f'"{hashlib.sha256(data).hexdigest()}"')
        handler.send_header("Accept-Ranges", "bytes")
        handler.send_header("Content-Length", str(len(data) - start))
        if start:
            handler.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        handler.end_headers()
        if not body:
            return
        if name in self.always_drop:
            handler.close_connection = True
            return
        cut = self.drop_after.pop(name, None)
        slow = self.bytes_per_s is not None and len(data) > self.throttle_above
        step = 64 * 1024
        for offset in range(start, len(data), step):
            if cut is not None and offset - start >= cut:
                handler.close_connection = True
                return
            chunk = data[offset : offset + step]
            try:
                handler.wfile.write(chunk)
                handler.wfile.flush()
            except (BrokenPipeError, ConnectionResetError):
                return
            self.sent[name] = self.sent.get(name, 0) + len(chunk)
            if slow:
                time.sleep(len(chunk) / self.bytes_per_s)  # type: ignore[operator]
