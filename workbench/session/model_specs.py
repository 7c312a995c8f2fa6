"""From the name a person gives a model to a loaded engine: a local model, or ``SERVER/MODEL`` on a server of
the config. Shared by the command line and the app's panes, so both read a name the same way."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from zhbench.engines.api import ChatEngine
from zhbench.engines.errors import RemoteError, ZhbenchError
from zhbench.engines.remote.server import LIST_TIMEOUT_S, RemoteServer, list_models

#: how the help explains ``SERVER/MODEL`` next to hub ids, which also have one slash
SPEC_HELP = (
    "SERVER/MODEL names MODEL on the server [servers.SERVER] of the config; SERVER wins over a hub "
    "organisation of that name only when it is a configured server"
)


def server_model(spec: str, servers: Mapping[str, RemoteServer]) -> tuple[RemoteServer, str] | None:
    """The configured server and model id ``spec`` names, or None: then ``spec`` is a path or a hub id.

    Only the first slash splits, so a server's model id may have slashes of its own (``vllm/Qwen/Qwen3-8B``).
    """
    name, slash, model = spec.partition("/")
    if slash and model and name in servers:
        return servers[name], model
    return None


def load_model_spec(
    spec: str,
    *,
    servers: Mapping[str, RemoteServer],
    at: RemoteServer | None = None,
    family: str | None = None,
    device: str | None = None,
    dtype: str | None = None,
    extra: Mapping[str, str] | None = None,
) -> ChatEngine:
    """The engine ``spec`` names: the model ``spec`` on the server ``at`` (given ad hoc), a model on a
    configured server, else a local one (``load_engine``).

    A server model takes none of a local model's load options: they are refused, not ignored.
    """
    named = (at, spec) if at is not None else server_model(spec, servers)
    if named is None:
        from zhbench.engines.registry import load_engine

        return load_engine(spec, family=family, device=device, dtype=dtype, extra=extra)
    local_options = {"family": family, "device": device, "dtype": dtype, **(extra or {})}
    given = [name for name, value in local_options.items() if value]
    if given:
        raise ZhbenchError(f"{spec} runs on its server: {', '.join(given)} can be chosen only for a local model")
    from zhbench.engines.remote.openai_compat import load_remote

    return load_remote(*named)


@dataclass(frozen=True)
class ServerListing:
    """The models a configured server offers, or why it could not say."""

    name: str
    server: RemoteServer
    models: tuple[str, ...] = ()
    problem: str | None = None


def list_server_models(servers: Mapping[str, RemoteServer]) -> list[ServerListing]:
    """Each server's models: those its config lists, else what ``GET /models`` answers. The servers are asked
    at once, each given a few seconds (``LIST_TIMEOUT_S``), so one that is down does not hold up the rest."""
    from concurrent.futures import ThreadPoolExecutor

    def listing(name: str) -> ServerListing:
        server = servers[name]
        if server.models is not None:
            return ServerListing(name, server, server.models)
        try:
            return ServerListing(name, server, tuple(list_models(server, timeout_s=LIST_TIMEOUT_S)))
        except RemoteError as exc:
            return ServerListing(name, server, problem=str(exc))

    if not servers:
        return []
    with ThreadPoolExecutor(max_workers=min(8, len(servers))) as pool:
        return list(pool.map(listing, sorted(servers)))
