"""``serve``: local models behind an OpenAI-compatible API (``workbench.session.serving``), on uvicorn.

The server binds before the models load, so a client can watch ``GET /v1/models`` (each entry's ``ready``)
while chat requests for a model still loading get 503. A model that fails to load stops the server with
its one-line reason. Starlette and uvicorn are imported only when this command runs.
"""

from __future__ import annotations

import argparse
import errno
import os
import socket
import sys
import threading
from typing import TYPE_CHECKING

from zhbench.engines.remote.server import ENV_NAME
from zhbench.engines.types import stats_summary
from zhbench.workbench.cli.common import CommandError, Commands, load, local_load_options

if TYPE_CHECKING:
    import uvicorn

    from zhbench.workbench.session.serving.app import ServedModels, ServedReply

#: how long a stopping server lets replies in progress finish before it cancels them
SHUTDOWN_GRACE_S = 2


def register(commands: Commands) -> None:
    serve = commands.add_parser(
        "serve",
        help="serve local models over an OpenAI-compatible API (/v1/models, /v1/chat/completions)",
        description="Serve local models to any OpenAI client: GET /v1/models and POST /v1/chat/completions, "
        "streamed or not. Each model answers one request at a time; up to --queue more wait, the next get 429. "
        "--family, --device, --dtype and --strategy apply to every --model.",
    )
    serve.add_argument(
        "--model",
        action="append",
        required=True,
        metavar="M",
        help="a model folder, a .pth file or a cached hub id (repeatable). Its id in the API is the folder's "
        "name (a file's, without .pth), or the hub id as given; GET /v1/models lists them",
    )
    local_load_options(serve)  # for every --model
    serve.add_argument(
        "--host", default="127.0.0.1", help="the address to listen on (default: 127.0.0.1, this machine only)"
    )
    serve.add_argument("--port", type=int, default=8000, help="1 to 65535 (default: 8000)")
    serve.add_argument(
        "--allow-host",
        action="append",
        default=[],
        metavar="NAME",
        help="also answer requests addressed to NAME (the Host header; repeatable; *.lan for a domain, * for any). "
        "By default only localhost, 127.0.0.1, [::1] and --host are, so a web page on another name that resolves "
        "here (DNS rebinding) is refused",
    )
    serve.add_argument(
        "--api-key-env",
        dest="key_env",
        metavar="VAR",
        help="require the bearer key held in the environment variable VAR (its NAME: the key is never printed)",
    )
    serve.add_argument(
        "--queue",
        type=int,
        default=8,
        metavar="N",
        help="requests that may wait for a busy model; the next are refused with 429 (default: 8)",
    )
    # `load` also reads a model on a server given ad hoc: serve's models are loaded here, never one of those.
    serve.set_defaults(handler=cmd_serve, base_url=None, api_key_env=None)


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from zhbench.workbench.session.serving.app import ServedModels, served_model_id, serving_app

    if args.queue < 0:
        raise CommandError("--queue must be 0 or more")
    if not 0 < args.port < 2**16:
        raise CommandError(f"--port must be from 1 to 65535, not {args.port}")
    ids = [served_model_id(spec) for spec in args.model]
    twice = sorted({ident for ident in ids if ids.count(ident) > 1})
    if twice:
        raise CommandError(f"two models would be served as {', '.join(twice)}: give each a folder of its own name")
    served = ServedModels.loading(ids, queue_limit=args.queue, api_key=_api_key(args.key_env), on_reply=_log_reply)
    app = serving_app(served, _allowed_hosts(args.host, args.allow_host))
    listening = _listen(args.host, args.port)  # a busy port is refused now, before any model loads
    config = uvicorn.Config(
        app,
        host=args.host,
        port=args.port,
        log_level="warning",  # uvicorn's own lines: failures only; each reply gets one line of ours
        access_log=False,
        lifespan="off",
        timeout_graceful_shutdown=SHUTDOWN_GRACE_S,
    )
    server = uvicorn.Server(config)
    failures: list[Exception] = []
    loader = threading.Thread(
        target=_load_models, args=(args, dict(zip(ids, args.model, strict=True)), served, server, failures),
        name="zhbench-serve-load", daemon=True,
    )
    host = f"[{args.host}]" if ":" in args.host else args.host
    key = f", bearer key from ${args.key_env}" if args.key_env else ""
    print(f"zhbench serve: http://{host}:{args.port}/v1 ({', '.join(ids)}: loading{key}; Ctrl+C stops)", flush=True)
    loader.start()
    with listening:
        server.run(sockets=[listening])
    if failures:
        raise failures[0]
    return 0


def _api_key(variable: str | None) -> str | None:
    """The key the server requires, read from the environment variable ``variable`` (None: no key)."""
    if variable is None:
        return None
    if not ENV_NAME.fullmatch(variable):  # a key given by mistake in its place is refused, never echoed
        raise CommandError("--api-key-env takes the upper-case NAME of an environment variable, not the key")
    key = os.environ.get(variable)
    if not key:
        raise CommandError(f"--api-key-env: the environment variable {variable} is not set")
    if not (key.isascii() and key.isprintable()):  # no client could send it; and it is never echoed
        raise CommandError(f"--api-key-env: the key in ${variable} holds a control or non-ASCII character")
    return key


def _listen(host: str, port: int) -> socket.socket:
    """A socket listening on ``host``:``port`` for uvicorn to serve on; one line when it cannot be had."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
    except (socket.gaierror, UnicodeError):
        raise CommandError(f"--host {host!r} is not an address of this machine") from None
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does: a restart may reuse it at once
        sock.bind(address)
        sock.listen(socket.SOMAXCONN)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise CommandError(
                f"port {port} on {host} is in use (another zhbench serve?); choose one with --port"
            ) from None
        raise CommandError(f"cannot listen on {host}:{port} ({exc.strerror or exc})") from None
    return sock


def _allowed_hosts(host: str, extra: list[str]) -> list[str]:
    """The ``Host`` names requests may give: this machine's loopback names, ``--host`` (unless it is every
    address) and each ``--allow-host``."""
    from zhbench.workbench.session.serving.app import LOOPBACK_HOSTS

    named = [] if host in ("0.0.0.0", "::", "") else [f"[{host}]" if ":" in host else host]
    for name in extra:
        if "*" in name[1:] or (name.startswith("*") and name != "*" and not name.startswith("*.")):
            raise CommandError(f"--allow-host {name!r}: give a name, *.DOMAIN for a domain's names, or * for any")
    return [*LOOPBACK_HOSTS, *named, *extra]


def _load_models(
    args: argparse.Namespace,
    specs: dict[str, str],
    served: ServedModels,
    server: uvicorn.Server,
    failures: list[Exception],
) -> None:
    """Load each model in turn (in this thread, while the server answers); a failure stops the server."""
    for ident, spec in specs.items():
        try:
            engine = load(args, spec)
        except Exception as exc:  # handed to the main thread, which reports it as any command's error
            failures.append(exc)
            server.should_exit = True
            return
        served.ready(ident, engine)
        info = engine.describe()
        print(f"zhbench serve: {ident} ready ({info.family}, {info.placement()})", flush=True)


def _log_reply(served: ServedReply) -> None:
    gone = "" if served.delivered else " · client gone"
    print(f"{served.model}: {stats_summary(served.reply.stats.to_dict())}{gone}", file=sys.stderr, flush=True)
