"""A model server zhbench talks to: where it is, how requests are authorised, and each failure as one line.

The API key is read from the environment variable a server's config names, at the moment a request is
made; it is kept nowhere else, and every message that leaves this package has it blanked out.
"""

from __future__ import annotations

import json
import os
import re
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from zhbench.engines.errors import RemoteError

if TYPE_CHECKING:
    import httpx

#: how long ``zhbench models`` waits for a server before it says the server cannot be reached
LIST_TIMEOUT_S = 3.0
#: the longest a server may take to accept a connection (the read timeout is the server's ``timeout_s``)
CONNECT_TIMEOUT_S = 10.0
#: how much of a server's own error message is shown
MESSAGE_CHARS = 200
#: what an ``api_key_env`` must look like: an upper-case variable NAME, so that a key given by mistake in its
#: place is refused (and never echoed) rather than named in a "not set" message
ENV_NAME = re.compile(r"[A-Z_][A-Z0-9_]*")


@dataclass(frozen=True)
class RemoteServer:
    """An OpenAI-compatible server: a ``[servers.NAME]`` table of the config, or ``--base-url`` ad hoc."""

    #: where the API starts, as an OpenAI client takes it: usually ``http://HOST:PORT/v1``
    base_url: str
    #: the config's name for it; None for a server given by ``--base-url``
    name: str | None = None
    #: the NAME of the environment variable holding the API key (the key is never written anywhere)
    api_key_env: str | None = None
    #: the models to list without asking the server; None: ``GET /models``
    models: tuple[str, ...] | None = None
    #: the longest the server may stay silent while it answers
    timeout_s: float = 120.0
    #: request fields sent with every chat request, as they are (e.g. ``chat_template_kwargs``)
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def public_url(self) -> str:
        """The base URL without credentials, query or fragment: what transcripts and messages show."""
        parts = urlsplit(self.base_url)
        host = parts.hostname or ""
        if ":" in host:  # an IPv6 address
            host = f"[{host}]"
        netloc = f"{host}:{parts.port}" if parts.port else host
        return urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", ""))

    @property
    def label(self) -> str:
        """The server's name in one-line messages."""
        return self.name or self.public_url

    def endpoint(self, path: str) -> str:
        return f"{self.base_url.rstrip('/')}/{path}"

    def headers(self) -> dict[str, str]:
        """The request headers: the bearer key from the environment, where the config names a variable."""
        key = self._api_key()
        return {"Authorization": f"Bearer {key}"} if key else {}

    def _api_key(self) -> str | None:
        if self.api_key_env is None:
            return None
        key = os.environ.get(self.api_key_env)
        if not key:
            raise RemoteError(f"{self.label}: the environment variable {self.api_key_env} (its API key) is not set")
        return key

    def redact(self, text: str) -> str:
        """``text`` made safe to show: the API key and URL credentials blanked, one line, no control characters."""
        secrets = [os.environ.get(self.api_key_env, "") if self.api_key_env else ""]
        secrets.append(urlsplit(self.base_url).password or "")
        for secret in secrets:
            if len(secret) >= 4:  # blanking a one-letter "key" would blank the message instead
                text = text.replace(secret, "***")
        return " ".join("".join(ch if ch.isprintable() else " " for ch in text).split())

    def failure(self, what: str, status: int | None = None) -> RemoteError:
        """A ``RemoteError`` naming this server, the message redacted."""
        return RemoteError(self.redact(f"{self.label}: {what}"), status)

    def timeouts(self, read_s: float | None = None) -> httpx.Timeout:
        import httpx

        read = self.timeout_s if read_s is None else read_s
        return httpx.Timeout(read, connect=min(CONNECT_TIMEOUT_S, read))


def servers_from_config(tables: Mapping[str, Any]) -> tuple[dict[str, RemoteServer], list[str]]:
    """The ``[servers.NAME]`` tables of a config as servers, and a line for each table that is wrong."""
    servers: dict[str, RemoteServer] = {}
    problems: list[str] = []
    for name, table in tables.items():
        try:
            servers[name] = _server_from_table(name, table)
        except ValueError as exc:
            problems.append(f"[servers.{name}]: {exc}; ignored")
    return servers, problems


def _server_from_table(name: str, table: Any) -> RemoteServer:
    if not isinstance(table, Mapping):
        raise ValueError("should be a table")
    known = {"base_url", "api_key_env", "models", "timeout_s", "extra"}
    unknown = sorted(set(table) - known)
    if unknown:
        raise ValueError(f"unknown key {unknown[0]!r} (known: {', '.join(sorted(known))})")
    if "/" in name:
        raise ValueError("a server's name cannot contain '/' (models are named SERVER/MODEL)")
    base_url = table.get("base_url")
    if not isinstance(base_url, str):
        raise ValueError('needs base_url = "http://HOST:PORT/v1"')
    models = table.get("models")
    if models is not None and not (isinstance(models, list) and all(isinstance(m, str) for m in models)):
        raise ValueError("models should be a list of model ids")
    api_key_env = table.get("api_key_env")
    if api_key_env is not None and not isinstance(api_key_env, str):
        raise ValueError("api_key_env should be the NAME of an environment variable")
    timeout_s = table.get("timeout_s", RemoteServer.timeout_s)
    if not isinstance(timeout_s, (int, float)) or isinstance(timeout_s, bool) or timeout_s <= 0:
        raise ValueError("timeout_s should be a number of seconds above 0")
    extra = table.get("extra", {})
    if not isinstance(extra, Mapping):
        raise ValueError("extra should be a table of request fields")
    return ad_hoc_server(
        base_url, name=name, api_key_env=api_key_env, models=models, timeout_s=float(timeout_s), extra=extra
    )


def ad_hoc_server(
    base_url: str,
    *,
    name: str | None = None,
    api_key_env: str | None = None,
    models: list[str] | None = None,
    timeout_s: float = RemoteServer.timeout_s,
    extra: Mapping[str, Any] | None = None,
) -> RemoteServer:
    """A server at ``base_url`` (``ValueError`` for one that is not an http(s) URL)."""
    parts = urlsplit(base_url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        # The URL itself is not repeated: it may hold credentials.
        raise ValueError("base_url should be an http:// or https:// URL with a host")
    if api_key_env is not None and not ENV_NAME.fullmatch(api_key_env):
        raise ValueError("api_key_env should be the upper-case NAME of an environment variable, not the key itself")
    return RemoteServer(
        base_url=base_url,
        name=name,
        api_key_env=api_key_env,
        models=tuple(models) if models is not None else None,
        timeout_s=timeout_s,
        extra=dict(extra or {}),
    )


# --- talking to it --------------------------------------------------------------------------------


def list_models(server: RemoteServer, *, timeout_s: float = LIST_TIMEOUT_S) -> list[str]:
    """The model ids the server lists at ``GET /models``; a ``RemoteError`` when it cannot say."""
    import httpx

    try:
        response = httpx.get(server.endpoint("models"), headers=server.headers(), timeout=timeout_s)
    except httpx.HTTPError as exc:
        raise transport_failure(server, exc, timeout_s) from None
    if response.status_code != 200:
        raise status_failure(server, response, model=None)
    try:
        listed = response.json()["data"]
        return [str(entry["id"]) for entry in listed]
    except (ValueError, KeyError, TypeError):
        raise server.failure("GET /models did not answer with a list of models") from None


def status_failure(server: RemoteServer, response: httpx.Response, *, model: str | None) -> RemoteError:
    """A refused request as one line: what the status means here, and the server's own reason."""
    status = response.status_code
    reason = _server_reason(response)
    if status in (401, 403):
        fix = f"check the key in ${server.api_key_env}" if server.api_key_env else "set the server's api_key_env"
        return server.failure(f"the server refused the API key ({status}: {reason}); {fix}", status)
    if status == 404:
        what = f"unknown model {model!r}" if model else "no such endpoint"
        fix = "check the model id, and that base_url ends where the API starts (usually /v1)"
        return server.failure(f"{what} (404: {reason}); {fix}", status)
    if status == 429:
        return server.failure(f"rate limited (429: {reason}); try again later", status)
    if status >= 500:
        return server.failure(f"server error {status}: {reason}", status)
    return server.failure(f"the server refused the request ({status}: {reason})", status)


def _server_reason(response: httpx.Response) -> str:
    """The reason a server gives in an error body (OpenAI's ``{"error": {"message"}}`` and its kin)."""
    try:
        response.read()
        body = response.json()
    except (ValueError, UnicodeDecodeError):
        return shorten(response.text) or response.reason_phrase
    return shorten(error_message(body) or response.reason_phrase)


def shorten(text: str) -> str:
    """A server's own words, cut to ``MESSAGE_CHARS``: a whole HTML error page is not one clear line."""
    text = " ".join(text.split())
    return text if len(text) <= MESSAGE_CHARS else text[: MESSAGE_CHARS - 1] + "…"


def error_message(body: object) -> str | None:
    """The message of an OpenAI-style error object (``{"error": {"message"}}``, ``{"error": "…"}``,
    ``{"object": "error", "message"}``, ``{"detail"}``), or None when ``body`` is not one."""
    if not isinstance(body, Mapping):
        return None
    error = body.get("error")
    if isinstance(error, Mapping):
        return str(error.get("message") or json.dumps(error, ensure_ascii=False))
    if isinstance(error, str) and error:
        return error
    if body.get("object") == "error" or "detail" in body:
        return str(body.get("message") or body.get("detail") or "error")
    return None


def transport_failure(server: RemoteServer, exc: Exception, read_timeout_s: float | None = None) -> RemoteError:
    """A connection that failed (refused, unknown host, timed out, broken off) as one line."""
    import httpx

    host = urlsplit(server.base_url).hostname
    if isinstance(exc, httpx.ConnectTimeout):
        return server.failure(f"no answer from {server.public_url} (connect timeout)")
    if isinstance(exc, httpx.TimeoutException):
        silent = read_timeout_s if read_timeout_s is not None else server.timeout_s
        return server.failure(f"the server sent nothing for {silent:g}s (read timeout; the config's timeout_s)")
    if _caused_by(exc, socket.gaierror):
        return server.failure(f"cannot resolve the host {host!r} (DNS failure)")
    if _caused_by(exc, ConnectionRefusedError):
        return server.failure(f"connection refused at {server.public_url} (is the server running?)")
    if isinstance(exc, httpx.RemoteProtocolError):
        return server.failure(f"the connection broke off ({exc})")
    return server.failure(f"cannot talk to {server.public_url} ({type(exc).__name__}: {exc})")


def _caused_by(exc: BaseException, kind: type[BaseException]) -> bool:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, kind):
            return True
        seen = seen.__cause__ or seen.__context__
    return False
