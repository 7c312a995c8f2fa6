"""``serve``: local models behind an OpenAI-compatible API (``workbench.session.serving``), on uvicorn.

The server binds before the models load, so a client can watch ``GET /v1/models`` (each entry's ``ready``)
while chat requests for a model still loading get 503. A model that fails to load stops the server with
its one-line reason. Starlette and uvicorn are imported only when this command runs.
"""

from __future__ import annotations

import argparse
import os
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
    serve.add_argument("--port", type=int, default=8000, help="default: 8000")
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
    ids = [served_model_id(spec) for spec in args.model]
    twice = sorted({ident for ident in ids if ids.count(ident) > 1})
    if twice:
        raise CommandError(f"two models would be served as {', '.join(twice)}: give each a folder of its own name")
    served = ServedModels.loading(ids, queue_limit=args.queue, api_key=_api_key(args.key_env), on_reply=_log_reply)
    config = uvicorn.Config(
        serving_app(served),
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
    server.run()
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
    return key


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
