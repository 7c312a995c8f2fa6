"""A model server zhbench talks to: where it is, how requests are authorised, and each failure as one line.

The API key is read from the environment variable a server's config names, at the moment a request is
made; it is kept nowhere else. Everything that came from a server (its messages, reply text, thinking, model
ids) passes ``blank_secrets`` before it leaves this package, so a server that echoes the key (whole, or cut
off part-way) never puts it on the screen or in a file.
"""

from __future__ import annotations

import json
import math
import os
import re
import socket
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from zhbench.engines.errors import RemoteError
from zhbench.engines.remote.reading import ACCEPT_ENCODING, Bounds, read_body
from zhbench.engines.text import partial_end

if TYPE_CHECKING:
    import httpx

#: how long ``zhbench models`` waits for a server before it says the server cannot be reached
LIST_TIMEOUT_S = 3.0
#: the longest a server may take to accept a connection (the read timeout is the server's ``timeout_s``)
CONNECT_TIMEOUT_S = 10.0
#: how much of a server's own error message is shown
MESSAGE_CHARS = 200
#: the most of an error's body that is read, and how long it may take
ERROR_BODY_BYTES = 1024 * 1024
ERROR_BODY_S = 10.0
#: the most a listing of models may hold
LISTING_BYTES = 8 * 1024 * 1024
#: the longest a whole answer may take, however steadily the server trickles it (``deadline_s`` in the config)
REPLY_DEADLINE_S = 600.0
#: the shortest start of a secret that is blanked where it appears cut off (a key cut at a message's end)
SECRET_PREFIX_CHARS = 6
#: a secret shorter than this is not blanked: blanking a one-letter "key" would blank the message instead
SHORTEST_SECRET = 4
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
    #: the longest one whole reply may take, however steadily it streams
    deadline_s: float = REPLY_DEADLINE_S
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
        """The request headers: the encodings zhbench inflates itself, and the bearer key from the environment
        where the config names a variable."""
        key = self._api_key()
        return {"Accept-Encoding": ACCEPT_ENCODING} | ({"Authorization": f"Bearer {key}"} if key else {})

    def _api_key(self) -> str | None:
        if self.api_key_env is None:
            return None
        key = os.environ.get(self.api_key_env)
        if not key:
            raise RemoteError(f"{self.label}: the environment variable {self.api_key_env} (its API key) is not set")
        if not (key.isascii() and key.isprintable()):  # a stray newline would go into a header; never echo the key
            raise RemoteError(
                f"{self.label}: the API key in ${self.api_key_env} holds a control or non-ASCII character "
                "(a stray newline?); set it again without one"
            )
        return key

    def secrets(self) -> list[str]:
        """What must never be shown: the API key (as the environment holds it now) and the URL's password."""
        found = [os.environ.get(self.api_key_env, "") if self.api_key_env else "", urlsplit(self.base_url).password]
        return [secret for secret in found if secret and len(secret) >= SHORTEST_SECRET]

    def scrub(self, text: str) -> str:
        """``text`` from the server with every secret, and any start of one, blanked (``blank_secrets``)."""
        return blank_secrets(text, self.secrets())

    def redact(self, text: str) -> str:
        """``text`` made safe to show in a message: secrets blanked, one line, no control characters."""
        return " ".join("".join(ch if ch.isprintable() else " " for ch in self.scrub(text)).split())

    def failure(self, what: str, status: int | None = None) -> RemoteError:
        """A ``RemoteError`` naming this server, the message redacted."""
        return RemoteError(self.redact(f"{self.label}: {what}"), status)

    def timeouts(self, read_s: float | None = None) -> httpx.Timeout:
        import httpx

        read = self.timeout_s if read_s is None else read_s
        return httpx.Timeout(read, connect=min(CONNECT_TIMEOUT_S, read))


def blank_secrets(text: str, secrets: Sequence[str]) -> str:
    """``text`` with each of ``secrets`` blanked (``***``), and each start of one of ``SECRET_PREFIX_CHARS`` or
    more characters: a key cut off at the end of a shortened message, or followed by other text, is blanked too."""
    for secret in secrets:
        start = secret[: min(SECRET_PREFIX_CHARS, len(secret))]
        pieces: list[str] = []
        done = 0
        found = text.find(start)
        while found >= 0:
            end = found + len(start)
            while end - found < len(secret) and end < len(text) and text[end] == secret[end - found]:
                end += 1
            pieces += [text[done:found], "***"]
            done = end
            found = text.find(start, end)
        text = "".join(pieces) + text[done:] if pieces else text
    return text


class SecretFilter:
    """``blank_secrets`` over a text that arrives piece by piece (a streamed reply): an end of the text that
    could be the start of a secret is held back until the next piece shows whether it is one."""

    def __init__(self, secrets: Sequence[str]) -> None:
        self.secrets = tuple(secrets)
        self._held = ""

    def feed(self, piece: str) -> str:
        """Take a piece; return the text that may be shown now."""
        if not self.secrets:
            return piece
        text = self._held + piece
        keep = partial_end(text, self.secrets)
        self._held = text[len(text) - keep :] if keep else ""
        return blank_secrets(text[: len(text) - keep], self.secrets)

    def flush(self) -> str:
        """The text held back, once no more comes."""
        text, self._held = self._held, ""
        return blank_secrets(text, self.secrets)


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
    known = {"base_url", "api_key_env", "models", "timeout_s", "deadline_s", "extra"}
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
    timeout_s = _seconds(table, "timeout_s", RemoteServer.timeout_s)
    deadline_s = _seconds(table, "deadline_s", RemoteServer.deadline_s)
    extra = table.get("extra", {})
    if not isinstance(extra, Mapping):
        raise ValueError("extra should be a table of request fields")
    return ad_hoc_server(
        base_url,
        name=name,
        api_key_env=api_key_env,
        models=models,
        timeout_s=timeout_s,
        deadline_s=deadline_s,
        extra=extra,
    )


def _seconds(table: Mapping[str, Any], key: str, default: float) -> float:
    value = table.get(key, default)
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0 < value < math.inf:
        raise ValueError(f"{key} should be a number of seconds above 0")
    return float(value)


def ad_hoc_server(
    base_url: str,
    *,
    name: str | None = None,
    api_key_env: str | None = None,
    models: list[str] | None = None,
    timeout_s: float = RemoteServer.timeout_s,
    deadline_s: float = RemoteServer.deadline_s,
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
        deadline_s=deadline_s,
        extra=dict(extra or {}),
    )


# --- talking to it --------------------------------------------------------------------------------


def list_models(server: RemoteServer, *, timeout_s: float = LIST_TIMEOUT_S) -> list[str]:
    """The model ids the server lists at ``GET /models``, answered in full within ``timeout_s``; a
    ``RemoteError`` when it cannot say. The ids pass ``scrub``: a server may echo anything in them."""
    import httpx

    bounds = Bounds("GET /models", timeout_s, max_bytes=LISTING_BYTES)
    try:
        with httpx.stream(
            "GET", server.endpoint("models"), headers=server.headers(), timeout=server.timeouts(timeout_s)
        ) as response:
            if response.status_code != 200:
                raise status_failure(server, response, model=None)
            body = read_body(server, response, bounds)
    except httpx.HTTPError as exc:
        raise transport_failure(server, exc, timeout_s) from None
    try:
        listed = json.loads(body)["data"]
        return [server.scrub(str(entry["id"])) for entry in listed]
    except (ValueError, KeyError, TypeError, RecursionError):
        raise server.failure("GET /models did not answer with a list of models") from None


def status_failure(server: RemoteServer, response: httpx.Response, *, model: str | None) -> RemoteError:
    """A refused request as one line: what the status means here, and the server's own reason."""
    status = response.status_code
    reason = _server_reason(server, response)
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


def _server_reason(server: RemoteServer, response: httpx.Response) -> str:
    """The reason a server gives in an error body (OpenAI's ``{"error": {"message"}}`` and its kin), its
    secrets blanked before it is cut short (a key cut in half is still blanked)."""
    bounds = Bounds("the error's body", min(server.timeout_s, ERROR_BODY_S), max_bytes=ERROR_BODY_BYTES)
    try:
        text = read_body(server, response, bounds).decode("utf-8", errors="replace")
    except RemoteError:  # too big, too slow or garbled: the status alone says enough
        return response.reason_phrase
    try:
        reason = error_message(json.loads(text)) or response.reason_phrase
    except (ValueError, RecursionError):
        reason = text or response.reason_phrase
    return shorten(server.scrub(reason))


def shorten(text: str, chars: int = MESSAGE_CHARS) -> str:
    """A server's own words, cut to ``chars``: a whole HTML error page is not one clear line."""
    text = " ".join(text.split())
    return text if len(text) <= chars else text[: chars - 1] + "…"


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
