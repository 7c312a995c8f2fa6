"""The ``zhbench`` command line. Its commands and JSON shapes are stable: scripts depend on them."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from engines.api import PromptInspecting, ReplyStream, default_params
from engines.errors import ZhbenchError
from workbench.transcripts import TranscriptError

EXIT_ERROR = 1
EXIT_INTERRUPTED = 130


class CommandError(Exception):
    """A problem with what the user asked for; reported as one line."""


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        args.handler = cmd_app
    elif args.a or args.b:
        parser.error("--a and --b open the app: give them without a command")
    try:
        return int(args.handler(args) or 0)
    except (ZhbenchError, CommandError, TranscriptError, ValueError) as exc:
        print(f"zhbench: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="zhbench",
        description="Run Chinese chat models locally and compare them. With no command, opens the app.",
    )
    parser.set_defaults(command=None)
    parser.add_argument("--a", metavar="M", help="open the app with model M (folder, .pth file or hub id) in pane A")
    parser.add_argument("--b", metavar="M", help="open the app with model M in pane B")
    parser.add_argument("--device", dest="app_device", metavar="DEVICE", help="where the app loads models (cpu, cuda)")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    models = commands.add_parser("models", help="list the seed catalog and the models found locally")
    models.add_argument("--json", action="store_true", help="print a JSON list")
    models.add_argument("--dir", action="append", type=Path, default=[], help="also look in this folder (repeatable)")
    models.set_defaults(handler=cmd_models)

    prompt = commands.add_parser("prompt", help="show what the model would be fed for a history")
    _model_options(prompt)
    prompt.add_argument("--history", required=True, type=Path, help="a JSON list of {role, content} messages")
    prompt.add_argument("--json", action="store_true", help="print {family, text, input_ids}")
    _param_options(prompt)
    prompt.set_defaults(handler=cmd_prompt)

    ask = commands.add_parser("ask", help="one reply to TEXT, streamed to stdout")
    _model_options(ask)
    ask.add_argument("--history", type=Path, help="earlier turns, a JSON list of {role, content} messages")
    ask.add_argument("--json", action="store_true", help="print one JSON object when the reply is done")
    _param_options(ask)
    ask.add_argument("text", metavar="TEXT", help="the user's message")
    ask.set_defaults(handler=cmd_ask)

    chat = commands.add_parser("chat", help="a plain multi-turn chat in this terminal")
    _model_options(chat)
    _param_options(chat)
    chat.set_defaults(handler=cmd_chat)

    paths = commands.add_parser("paths", help="where the config, transcripts, exports and demo models are")
    paths.add_argument("--json", action="store_true", help="print a JSON object")
    paths.set_defaults(handler=cmd_paths)

    transcripts = commands.add_parser("transcripts", help="list the saved sessions")
    transcripts.add_argument("--json", action="store_true", help="print a JSON list")
    transcripts.set_defaults(handler=cmd_transcripts)

    export = commands.add_parser("export", help="write a saved session as Markdown or JSON")
    export.add_argument("session", metavar="SESSION", help="a session id (or its start), a .jsonl file, or latest")
    export.add_argument("--format", choices=("md", "json"), default="md")
    export.add_argument("-o", "--output", type=Path, help="write to this file (default: stdout)")
    export.set_defaults(handler=cmd_export)

    tiny = commands.add_parser("make-tiny", help="write a tiny random-weight stand-in of a family")
    tiny.add_argument("family", metavar="FAMILY")
    tiny.add_argument("dir", metavar="DIR", type=Path)
    tiny.add_argument(
        "--weights", choices=("bin", "safetensors", "pth"), help="weights file format (default: the published one)"
    )
    tiny.set_defaults(handler=cmd_make_tiny)
    return parser


def _model_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, metavar="M", help="a model folder, a .pth file, or a cached hub id")
    parser.add_argument("--family", metavar="F", help="the model family, overriding detection")
    parser.add_argument("--device", help="cpu, cuda or cuda:N (default: cuda when there is a GPU)")
    parser.add_argument("--dtype", help="float32, float16 or bfloat16 (default: as upstream)")
    parser.add_argument(
        "--strategy", help="RWKV only: where and in what precision layers run, e.g. 'cuda fp16i8 *10 -> cuda fp16'"
    )


def _param_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("decoding (defaults: the model's upstream defaults)")
    group.add_argument("--preset", help="a named upstream setting of the family (e.g. promptclue: beam, sample)")
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


# --- commands ---------------------------------------------------------------------------------


def cmd_models(args: argparse.Namespace) -> int:
    from engines.hub.discovery import local_models, match_catalog

    seeds, others = match_catalog(local_models(args.dir))
    rows: list[dict[str, Any]] = [
        {
            **entry.to_dict(),
            "path": str(match.path) if match else None,
            "size_bytes": match.size_bytes if match else None,
            "source": "catalog",
        }
        for entry, match in seeds
    ]
    rows += [
        {
            "id": model.id,
            "name": model.path.name,
            "family": model.family,
            "path": str(model.path),
            "size_bytes": model.size_bytes,
            "source": "local",
        }
        for model in others
    ]
    if args.json:
        print(json.dumps(rows, ensure_ascii=False, indent=2))
        return 0
    for row in rows:
        where = row["path"] or "not downloaded"
        size = f"{row['size_bytes'] / 1e6:.1f} MB" if row["size_bytes"] is not None else ""
        print(f"{row['family']:<15} {row['id']:<42} {size:>10}  {where}")
    return 0


def cmd_prompt(args: argparse.Namespace) -> int:
    engine = _load(args)
    history = read_history(args.history, answerable=True)
    if not isinstance(engine, PromptInspecting):
        raise CommandError(f"{engine.family} runs elsewhere: it has no prompt ids to show")
    prompt = engine.prompt_for(history, _params(engine, args))
    if args.json:
        print(
            json.dumps(
                {"family": engine.family, "text": prompt.text, "input_ids": prompt.input_ids}, ensure_ascii=False
            )
        )
    else:
        from widgets.safe_text import visible_text

        print(visible_text(prompt.text))
        print(" ".join(map(str, prompt.input_ids)))
    return 0


def cmd_ask(args: argparse.Namespace) -> int:
    engine = _load(args)
    history = read_history(args.history) if args.history else []
    history.append({"role": "user", "content": args.text})
    params = _params(engine, args)
    if args.json:
        reply = engine.reply(history, params)
        print(json.dumps(reply_json(reply), ensure_ascii=False))
        return 0
    reply = _stream(engine, history, params)
    return EXIT_INTERRUPTED if reply.stats.stop_reason.value == "cancelled" else 0


def cmd_chat(args: argparse.Namespace) -> int:
    engine = _load(args)
    params = _params(engine, args)
    info = engine.describe()
    print(f"{info.family} · {info.path} · {info.placement()}")
    print("Enter sends · /reset clears the conversation · Ctrl+C stops a reply · Ctrl+D quits")
    commands = engine.chat_commands()
    if commands:
        print("Model commands: " + " · ".join(f"{command} ({meaning})" for command, meaning in commands.items()))
    history: list[dict[str, str]] = []
    while True:
        try:
            text = input("user> ")
        except EOFError:
            print()
            return 0
        except KeyboardInterrupt:
            print()
            return 0
        if text.strip() == "/reset":
            history.clear()
            print("(conversation cleared)")
            continue
        history.append({"role": "user", "content": text})
        print("bot> ", end="", flush=True)
        reply = _stream(engine, history, params)
        history.append({"role": "assistant", "content": reply.text})


def cmd_app(args: argparse.Namespace) -> int:
    from workbench.app import ZhbenchApp

    ZhbenchApp(preload={"a": args.a, "b": args.b}, device=args.app_device).run()
    return 0


def cmd_paths(args: argparse.Namespace) -> int:
    from workbench.config import user_paths

    found = {name: str(path) for name, path in user_paths().items()}
    if args.json:
        print(json.dumps(found, indent=2))
    else:
        for name, path in found.items():
            print(f"{name:<12} {path}")
    return 0


def cmd_transcripts(args: argparse.Namespace) -> int:
    from workbench.config import transcripts_dir
    from workbench.transcripts import list_sessions

    folder = transcripts_dir()
    found = list(list_sessions(folder))
    if args.json:
        rows = [s.summary() if not isinstance(s, TranscriptError) else {"error": str(s)} for s in found]
        print(json.dumps(rows, ensure_ascii=False, indent=2))
        return 0
    if not found:
        print(f"no saved sessions in {folder}")
    for session in found:
        if isinstance(session, TranscriptError):
            print(f"unreadable: {session}")
            continue
        info = session.summary()
        models = " | ".join(f"{k.upper()}: {m or '-'}" for k, m in info["models"].items())
        print(f"{info['id']}  {info['messages']:>4} messages  {models}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from workbench.config import transcripts_dir
    from workbench.transcripts import find_session, to_json, to_markdown

    session = find_session(transcripts_dir(), args.session)
    if args.format == "md":
        text = to_markdown(session)
    else:
        text = json.dumps(to_json(session), ensure_ascii=False, indent=2) + "\n"
    if args.output is None:
        sys.stdout.write(text)
        return 0
    try:
        args.output.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise CommandError(f"{args.output}: cannot write ({exc.strerror or exc})") from None
    print(f"wrote {args.output}", file=sys.stderr)
    return 0


def cmd_make_tiny(args: argparse.Namespace) -> int:
    from engines.registry import write_standin

    path = write_standin(args.family, args.dir, args.weights)
    print(f"wrote a tiny random-weight {args.family} stand-in to {path}")
    return 0


# --- helpers ----------------------------------------------------------------------------------


def _load(args: argparse.Namespace) -> Any:
    from engines.registry import load_engine

    extra = {"strategy": args.strategy} if args.strategy else None
    return load_engine(args.model, family=args.family, device=args.device, dtype=args.dtype, extra=extra)


def _params(engine: Any, args: argparse.Namespace) -> Any:
    presets = engine.presets()
    if args.preset is not None:
        if args.preset not in presets:
            raise CommandError(f"unknown preset {args.preset!r} for {engine.family} (known: {', '.join(presets)})")
        params = presets[args.preset]
    else:
        params = default_params(engine)
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
    params = params.with_overrides(overrides)
    params.validate()
    return params


def read_history(path: Path, *, answerable: bool = False) -> list[dict[str, str]]:
    """Messages from a JSON history file; ``answerable`` also requires the last one to be the user's."""
    from engines.types import validate_history, validate_messages

    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CommandError(f"{path}: no such history file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise CommandError(f"{path}: unreadable history file ({exc})") from None
    except json.JSONDecodeError as exc:
        raise CommandError(f"{path}: not valid JSON ({exc})") from None
    try:
        return [dict(m) for m in (validate_history if answerable else validate_messages)(data)]
    except ZhbenchError as exc:
        raise CommandError(f"{path}: {exc}") from None


def _stream(engine: Any, history: list[dict[str, str]], params: Any) -> Any:
    """Stream a reply to stdout; Ctrl+C stops it and keeps what came."""
    from engines.types import stats_summary
    from widgets.safe_text import visible_text

    stream = ReplyStream(engine, history, params).start()
    try:
        for piece in stream:
            sys.stdout.write(visible_text(piece))
            sys.stdout.flush()
    except KeyboardInterrupt:
        stream.cancel()
        stream.wait()
    reply = stream.result
    if reply.stats.stop_reason.value == "cancelled":
        sys.stdout.write(" [stopped]")
    sys.stdout.write("\n")
    print(f"[{stats_summary(reply.stats.to_dict())}]", file=sys.stderr)
    return reply


def reply_json(reply: Any) -> dict[str, Any]:
    return {
        "family": reply.family,
        "reply": reply.text,
        "output_ids": reply.output_ids,
        "params": reply.params.to_dict(),
        "stats": reply.stats.to_dict(),
    }


if __name__ == "__main__":
    sys.exit(main())
