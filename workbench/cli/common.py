"""What the commands share: loading a model from the options, decoding settings, history files, streaming."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeAlias

from zhbench.engines.api import ChatEngine, EngineInfo, ReplyStream, default_params
from zhbench.engines.errors import GenerationError, ZhbenchError
from zhbench.engines.types import GenerationParams, Message, Reply, is_encodable, stats_summary
from zhbench.plain.safe_text import visible_text
from zhbench.workbench.session.model_specs import SPEC_HELP

EXIT_ERROR = 1
EXIT_INTERRUPTED = 130


#: what ``argparse.ArgumentParser.add_subparsers`` returns: each command group's module adds its commands to it
Commands: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"  # argparse names no public type for it


class CommandError(Exception):
    """A problem with what the user asked for; reported as one line."""


def model_options(parser: argparse.ArgumentParser, *, required: bool = True) -> None:
    """``--model`` and how it loads; not ``required`` for a command that can take the models of a session."""
    parser.add_argument(
        "--model",
        required=required,
        metavar="M",
        help=f"a model folder, a .pth file, a cached hub id, or SERVER/MODEL ({SPEC_HELP}); with --base-url, "
        "the model id on that server",
    )
    load_options(parser)


def load_options(parser: argparse.ArgumentParser) -> None:
    """How the models a command names load (``load`` reads them): ``local_load_options`` and a server that is
    not in the config; for ``batch`` they go to each of its models."""
    local_load_options(parser)
    server = parser.add_argument_group("a model on an OpenAI-compatible server that is not in the config")
    server.add_argument("--base-url", metavar="URL", help="where its API starts, e.g. http://127.0.0.1:8000/v1")
    server.add_argument(
        "--api-key-env", metavar="VAR", help="with --base-url: the NAME of the environment variable holding its key"
    )


def local_load_options(parser: argparse.ArgumentParser) -> None:
    """How a local model loads (``load`` reads them): family, device, precision, RWKV's strategy, --force."""
    parser.add_argument("--family", metavar="F", help="the model family, overriding detection")
    parser.add_argument("--device", help="cpu, cuda or cuda:N (default: cuda when there is a GPU)")
    parser.add_argument("--dtype", help="float32, float16 or bfloat16 (default: as upstream)")
    parser.add_argument(
        "--strategy", help="RWKV only: where and in what precision layers run, e.g. 'cuda fp16i8 *10 -> cuda fp16'"
    )
    parser.add_argument(
        "--template",
        metavar="NAME",
        help="GGUF only: the chat template for a file that carries none, from the catalog (chatml, qwen2.5, "
        "qwen3, deepseek-r1-distill, glm-4.6) or a .jinja file (default: the config's [templates] entry for it)",
    )
    parser.add_argument(
        "--force", action="store_true", help="load even when the memory estimate says the model will not fit"
    )


def param_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("decoding (defaults: the model's upstream defaults)")
    group.add_argument("--preset", help="a named upstream setting of the family (e.g. promptclue: beam, sample)")
    group.add_argument("--system", metavar="TEXT", help="the system prompt (families whose prompt has one)")
    group.add_argument("--seed", type=int)
    group.add_argument("--greedy", action="store_true", default=None, help="deterministic decoding")
    group.add_argument("--max-new-tokens", type=int)
    group.add_argument("--temperature", type=float)
    group.add_argument("--top-p", type=float)
    group.add_argument("--top-k", type=int)
    group.add_argument("--repetition-penalty", type=float)
    group.add_argument(
        "--set", action="append", default=[], metavar="NAME=VALUE", help="any other setting (repeatable)"
    )


#: the config's problems already shown on stderr by this process
_said: set[str] = set()


def load(args: argparse.Namespace, model: str | None = None) -> ChatEngine:
    """The model the ``--model`` options name (or ``model``, for a command that takes several): local, on a
    configured server, or at ``--base-url``."""
    from zhbench.engines.local.chat_render import ChatTemplateNeeded, set_render_limits
    from zhbench.engines.remote.server import ad_hoc_server
    from zhbench.workbench.session.chat_templates import remembered_template, template_advice, template_question
    from zhbench.workbench.session.config import load_config
    from zhbench.workbench.session.fit_check import refuse_unfit_load
    from zhbench.workbench.session.model_specs import load_model_spec, server_model

    if args.api_key_env is not None and args.base_url is None:
        raise CommandError("--api-key-env goes with --base-url (a configured server names its key in the config)")
    at = ad_hoc_server(args.base_url, api_key_env=args.api_key_env) if args.base_url is not None else None
    spec = given = args.model if model is None else model
    config = load_config()
    for problem in [problem for problem in config.problems if problem not in _said]:  # once: batch loads several
        print(visible_text(f"zhbench: warning: {problem}"), file=sys.stderr)
        _said.add(problem)
    set_render_limits(config.render_limits)
    servers = config.servers if at is None and "/" in spec else {}
    extra = {name: value for name in ("strategy", "template") if (value := getattr(args, name, None))} or None
    family = args.family
    if at is None and server_model(spec, servers) is None:
        from zhbench.engines.registry import resolve

        path, family = resolve(spec, family)  # once, for the fit check and the load
        remembered = None if getattr(args, "template", None) else remembered_template(config.templates, path, family)
        if remembered is not None:  # chosen for this model before (the app's question, or by hand)
            extra = {**(extra or {}), "template": remembered}
        if not getattr(args, "force", False):
            refuse_unfit_load(
                str(path), family=family, device=args.device, dtype=args.dtype, extra=extra, shown_as=spec
            )
        spec = str(path)
    try:
        return load_model_spec(
            spec, servers=servers, at=at, family=family, device=args.device, dtype=args.dtype, extra=extra
        )
    except ChatTemplateNeeded as needed:  # named as the user named it, with the entry that loads it
        raise CommandError(template_advice(template_question(given, needed), config.path)) from None


def params(engine: ChatEngine, args: argparse.Namespace) -> GenerationParams:
    """The engine's preset (or default) settings with the options on top, checked."""
    presets = engine.presets()
    if args.preset is not None:
        if args.preset not in presets:
            raise CommandError(f"unknown preset {args.preset!r} for {engine.family} (known: {', '.join(presets)})")
        chosen = presets[args.preset]
    else:
        chosen = default_params(engine)
    return with_command_line_settings(engine, chosen, args)


def with_command_line_settings(
    engine: ChatEngine, chosen: GenerationParams, args: argparse.Namespace
) -> GenerationParams:
    """``chosen`` with the decoding options given on the command line on top, checked (a resumed session's
    settings, or a preset's)."""
    overrides: dict[str, object] = {
        name: value
        for name, value in (
            ("seed", args.seed),
            ("greedy", args.greedy),
            ("max_new_tokens", args.max_new_tokens),
            ("temperature", args.temperature),
            ("top_p", args.top_p),
            ("top_k", args.top_k),
            ("repetition_penalty", args.repetition_penalty),
        )
        if value is not None
    }
    for item in args.set:
        name, sep, value = item.partition("=")
        if not sep:
            raise CommandError(f"--set takes NAME=VALUE, got {item!r}")
        overrides[name.strip().replace("-", "_")] = value.strip()
    if args.system is not None:
        if not hasattr(chosen, "system_prompt"):
            raise CommandError(f"--system: {engine.family} has no system prompt (its prompt format has none)")
        overrides["system_prompt"] = command_line_text(args.system, "--system")
    chosen = chosen.with_overrides(overrides)
    chosen.validate()
    return chosen


def command_line_text(text: str, name: str) -> str:
    """``text`` as given on the command line, refused when its bytes were not UTF-8 (Python keeps such
    bytes as lone surrogates, which no tokenizer or server takes)."""
    if not is_encodable(text):
        raise CommandError(f"{name} is not valid UTF-8 text")
    return text


def read_history(path: Path, *, answerable: bool = False) -> list[Message]:
    """Messages from a JSON history file; ``answerable`` also requires the last one to be the user's."""
    from zhbench.engines.local.file_reads import read_regular_text
    from zhbench.engines.types import validate_history, validate_messages

    try:
        data = json.loads(read_regular_text(path))
    except FileNotFoundError:
        raise CommandError(f"{path}: no such history file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise CommandError(f"{path}: unreadable history file ({exc})") from None
    except json.JSONDecodeError as exc:
        raise CommandError(f"{path}: not valid JSON ({exc})") from None
    except RecursionError:  # the decoder recurses once per level of nesting
        raise CommandError(f"{path}: not a history (its JSON is nested too deeply)") from None
    try:
        return (validate_history if answerable else validate_messages)(data)
    except ZhbenchError as exc:
        raise CommandError(f"{path}: {exc}") from None


def stream_to_stdout(
    engine: ChatEngine,
    history: list[Message],
    settings: GenerationParams,
    on_piece: Callable[[str], object] | None = None,
) -> Reply:
    """Stream a reply to stdout, shown literally (a reasoning model's thinking to stderr, dimmed on a
    terminal), each piece also handed to ``on_piece``; Ctrl+C stops it and keeps what came."""
    stream = ReplyStream(engine, history, settings, on_reasoning=_show_thinking).start()
    try:
        for piece in stream:
            sys.stdout.write(visible_text(piece))
            sys.stdout.flush()
            if on_piece is not None:
                on_piece(piece)
    except KeyboardInterrupt:
        stream.cancel()
        stream.wait()
    except GenerationError as exc:  # what came stays on screen, marked cut off; the reason follows on stderr
        if isinstance(exc.partial, Reply) and (exc.partial.text or exc.partial.reasoning):
            sys.stdout.write(" [cut off]\n")
        raise
    reply = stream.result
    if reply.reasoning:
        _show_thinking("\n")
    if reply.stats.stop_reason.value == "cancelled":
        sys.stdout.write(" [stopped]")
    sys.stdout.write("\n")
    print(f"[{stats_summary(reply.stats.to_dict(), reply.params.to_dict())}]", file=sys.stderr)
    return reply


def _show_thinking(piece: str) -> None:
    dim, plain = ("\x1b[2m", "\x1b[0m") if sys.stderr.isatty() else ("", "")
    sys.stderr.write(dim + visible_text(piece) + plain)
    sys.stderr.flush()


def reply_json(reply: Reply, info: EngineInfo | None = None) -> dict[str, Any]:
    """``ask --json``'s object; a reasoning model's reply adds ``reasoning``, a server's reply the model id it
    reported as ``served_model``, and a model whose engine (``info``) names its ``quantization`` and file
    ``sha256`` (a GGUF file) adds both, so a verdict names exactly what answered (the others keep their
    shape)."""
    data = {
        "family": reply.family,
        "reply": reply.text,
        "output_ids": reply.output_ids,
        "params": reply.params.to_dict(),
        "stats": reply.stats.to_dict(),
    }
    if reply.reasoning:
        data["reasoning"] = reply.reasoning
    if reply.served_model is not None:
        data["served_model"] = reply.served_model
    for key in ("quantization", "sha256"):
        if info is not None and key in info.details:
            data[key] = info.details[key]
    return data


def write_stdout(text: str) -> None:
    """Write ``text`` to stdout; a full disk or a closed pipe is one clear error, not a traceback at exit."""
    try:
        sys.stdout.write(text)
        sys.stdout.flush()
    except OSError as exc:
        # What could not be written would be flushed again at exit, and fail again: send it nowhere.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        raise CommandError(f"cannot write to stdout ({exc.strerror or exc})") from None


#: what ``-o`` takes as standard output: ``-``, and the names a shell gives it (written through, so that
#: ``-o /dev/stdout | less`` pipes and ``>> notes`` appends, where replacing the file they name would not)
STANDARD_OUTPUT = frozenset({"-", "/dev/stdout", "/dev/fd/1", "/proc/self/fd/1"})


def output_option(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """``-o FILE``: where a command writes what it would print (``write_output`` writes it)."""
    parser.add_argument(
        "-o", "--output", type=output_path, metavar="FILE", help="write to this file (default, or -: stdout)"
    )


def output_path(text: str) -> Path:
    """``-o``'s value; an empty one is refused (``Path("")`` would be the current folder)."""
    if not text:
        raise argparse.ArgumentTypeError("the output path is empty: give a file name, or - for standard output")
    return Path(text)


def write_output(path: Path | None, text: str) -> None:
    """Write ``text`` to the file ``path`` (whole or not at all: a full disk leaves no half file; a FIFO, a
    device or a folder is refused), or to stdout when there is none or it names stdout (``STANDARD_OUTPUT``);
    a failure is one clear error (``FileWriteError``)."""
    from zhbench.plain.file_writes import NotAFileToWrite, write_atomically
    from zhbench.workbench.session.config import owned_by_zhbench

    if path is None or str(path) in STANDARD_OUTPUT:
        write_stdout(text)
        return
    owned = owned_by_zhbench(path)
    if owned is not None:  # an export over a transcript or the vote store would destroy what it reports on
        raise CommandError(f"{path} is {owned}: give -o a file of your own")
    try:
        write_atomically(path, text)
    except NotAFileToWrite as exc:
        raise CommandError(f"{exc} (-o - writes to standard output)") from None
    print(f"wrote {path}", file=sys.stderr)
