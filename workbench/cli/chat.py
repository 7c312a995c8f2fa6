"""``prompt``, ``ask`` and ``chat``: one model from the command line."""

from __future__ import annotations

import argparse
import io
import sys
import threading
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from zhbench.engines.api import ChatEngine, MessagesInspecting, PromptInspecting
from zhbench.engines.errors import GenerationError
from zhbench.engines.types import GenerationParams, Reply, is_encodable
from zhbench.plain.safe_text import json_text, visible_text
from zhbench.workbench.cli.common import (
    EXIT_INTERRUPTED,
    CommandError,
    Commands,
    command_line_text,
    load,
    model_options,
    param_options,
    params,
    read_history,
    reply_json,
    stream_to_stdout,
    with_command_line_settings,
)
from zhbench.workbench.session.fresh_thread import in_fresh_thread
from zhbench.workbench.session.transcripts import export_descriptions

if TYPE_CHECKING:  # the bench (and the registry, identities and config it brings) loads with the command
    from zhbench.workbench.session.bench import Bench, ReplyJob


def register(commands: Commands) -> None:
    prompt = commands.add_parser(
        "prompt", help="show what the model would be fed for a history (a server model: the messages it is sent)"
    )
    model_options(prompt)
    prompt.add_argument("--history", required=True, type=Path, help="a JSON list of {role, content} messages")
    prompt.add_argument(
        "--json", action="store_true", help="print {family, text, input_ids} (a server model: {family, messages})"
    )
    param_options(prompt)
    prompt.set_defaults(handler=cmd_prompt)

    ask = commands.add_parser("ask", help="one reply to TEXT, streamed to stdout")
    model_options(ask, required=False)
    ask.add_argument("--history", type=Path, help="earlier turns, a JSON list of {role, content} messages")
    ask.add_argument(
        "--session",
        metavar="ID",
        help="add this exchange to a saved session (an id, its start, or latest), asked of its models",
    )
    ask.add_argument("--json", action="store_true", help="print one JSON object when the reply is done")
    param_options(ask)
    ask.add_argument("text", metavar="TEXT", help="the user's message")
    ask.set_defaults(handler=cmd_ask)

    chat = commands.add_parser(
        "chat", help="a plain multi-turn chat in this terminal, saved as a session like the app's"
    )
    model_options(chat, required=False)
    chat.add_argument(
        "--resume",
        nargs="?",
        const="latest",
        metavar="ID",
        help="continue a saved session (the latest when no id is given) with its models",
    )
    param_options(chat)
    chat.set_defaults(handler=cmd_chat)


def cmd_prompt(args: argparse.Namespace) -> int:
    history = read_history(args.history, answerable=True)  # a bad file is refused before a model loads
    engine = load(args)
    if isinstance(engine, MessagesInspecting):  # a server builds the prompt itself: it has no ids to show
        messages = engine.messages_for(history, params(engine, args))
        shown_messages = {"family": engine.family, "messages": messages} if args.json else messages
        print(json_text(shown_messages, indent=None if args.json else 2))
        return 0
    if not isinstance(engine, PromptInspecting):
        raise CommandError(f"{engine.family} runs elsewhere: it has no prompt ids to show")
    prompt = engine.prompt_for(history, params(engine, args))
    if args.json:
        shown = {"family": engine.family, "text": prompt.text, "input_ids": prompt.input_ids}
        print(json_text(shown))
    else:
        print(visible_text(prompt.text))
        print(" ".join(map(str, prompt.input_ids)))
    return 0


def cmd_ask(args: argparse.Namespace) -> int:
    if args.session is not None:
        return _ask_in_session(args)
    _need_model(args, "--session")
    history = read_history(args.history) if args.history else []  # refused before a model loads
    history.append({"role": "user", "content": command_line_text(args.text, "TEXT")})
    engine = load(args)
    settings = params(engine, args)
    if args.json:
        cancel = threading.Event()  # on a thread of its own, as the streamed reply (``fresh_thread``)
        reply = in_fresh_thread(partial(engine.reply, history, settings, cancel=cancel), cancel=cancel)
        print(json_text(reply_json(reply, engine.describe())))
        return 0
    reply = stream_to_stdout(engine, history, settings)
    return EXIT_INTERRUPTED if reply.stats.stop_reason.value == "cancelled" else 0


def _session_id(bench: Bench) -> str | None:
    return bench.transcript.session_id if bench.transcript is not None else None


def _need_model(args: argparse.Namespace, instead: str) -> None:
    if args.model is None:
        raise CommandError(f"give --model M (or {instead} to go on with a saved session's models)")


def _ask_in_session(args: argparse.Namespace) -> int:
    """One exchange added to a saved session: TEXT to each of its panes whose model is here, each reply
    streamed (or, with --json, printed as ``ask --json``'s object with its session and pane)."""
    if args.model is not None or args.history is not None:
        raise CommandError("--session asks the session's own models with its own history: give no --model or --history")
    text = command_line_text(args.text, "TEXT")
    bench = _session_bench(args, args.session)
    results = []
    for job in bench.send(text, [state.name for state in bench.panes if state.engine is not None]):
        if args.json:
            reply = _json_reply(bench, job)
            results.append({"session": _session_id(bench), "pane": job.pane} | reply)
            continue
        if len(bench.panes) > 1:
            print(f"{job.pane.upper()}> ", end="", flush=True)
        _stream_reply(bench, job)
    if args.json:
        print(json_text(results[0] if len(results) == 1 else results))
    return 0


#: the commands ``chat`` itself answers (a model's own commands are listed apart and go to the model)
CHAT_COMMANDS = {
    "/help": "list the commands",
    "/reset": "clear the conversation",
    "/system TEXT": "set the system prompt (no TEXT: none)",
    "/save": "export the session as " + export_descriptions(),
    "/exit": "quit (as Ctrl+D does)",
}
#: a line ending with this goes on to the next line: one message of several lines
CONTINUE_LINE = "\\"


def cmd_chat(args: argparse.Namespace) -> int:
    if args.resume is not None:
        if args.model is not None:
            raise CommandError("--resume goes on with the session's own models: give no --model")
        bench = _session_bench(args, args.resume)
        _show_conversation(bench)
    else:
        _need_model(args, "--resume")
        bench = _new_bench(args)
    live = [(state.name, state.engine) for state in bench.panes if state.engine is not None]
    for name, engine in live:
        info = engine.describe()
        shown = f"{name.upper()}: " if len(bench.panes) > 1 else ""
        # a local model by its id (an Ollama model's name:tag, not its blob's path), a server's by its address
        where = bench.pane(name).label if info.path is not None else info.details.get("base_url")
        print(visible_text(f"{shown}{info.family} · {where} · {info.placement()}"))
    print(
        f"Enter sends · a line ending in {CONTINUE_LINE} goes on to the next · /help lists the commands · "
        "Ctrl+C stops a reply · Ctrl+D quits"
    )
    model_commands = {command: meaning for _, engine in live for command, meaning in engine.chat_commands().items()}
    if model_commands:
        print("Model commands: " + _command_list(model_commands))
    _keep_undecodable_input()
    try:
        _chat_loop(bench, model_commands)
    finally:
        if bench.transcript is not None:
            bench.transcript.close()
            print(f"(saved: zhbench chat --resume {bench.transcript.session_id})", file=sys.stderr)
    return 0


def _chat_loop(bench: Bench, model_commands: dict[str, str]) -> None:
    targets = [state.name for state in bench.panes if state.engine is not None]
    while True:
        text = _read_message()
        if text is None:
            return
        if not is_encodable(text):
            print("(not sent: that line is not valid UTF-8 text)")
            continue
        if text.startswith("//"):
            text = text[1:]  # a message of its own that starts with a slash
        elif text.startswith("/"):
            if _chat_command(bench, text.strip(), model_commands):
                return
            continue
        for job in bench.send(text, targets):
            print(f"{job.pane.upper() if len(bench.panes) > 1 else 'bot'}> ", end="", flush=True)
            _stream_reply(bench, job)


def _read_message() -> str | None:
    """One message: a line, or several when each but the last ends in ``CONTINUE_LINE``; None at the end of
    input (Ctrl+D) or on Ctrl+C at the prompt."""
    lines: list[str] = []
    prompt = "user> "
    while True:
        try:
            line = input(prompt)
        except (EOFError, KeyboardInterrupt):
            print()  # the shell's prompt starts on a line of its own
            return None
        if not line.endswith(CONTINUE_LINE):
            return "\n".join([*lines, line])
        lines.append(line.removesuffix(CONTINUE_LINE))
        prompt = "...   "


def _chat_command(bench: Bench, text: str, model_commands: dict[str, str]) -> bool:
    """Answer one of ``CHAT_COMMANDS`` (an unknown one is said, never sent); whether the chat ends."""
    command, _, rest = text.partition(" ")
    if command == "/exit":
        return True
    if command == "/help":
        print("Commands: " + _command_list(CHAT_COMMANDS))
        print(f"A line ending in {CONTINUE_LINE} goes on to the next; a message starting with / is sent as //…")
        if model_commands:
            print("Model commands: " + _command_list(model_commands))
    elif command == "/reset":
        for state in bench.panes:
            bench.clear(state.name)
        print("(conversation cleared)")
    elif command == "/system":
        _set_system_prompt(bench, rest.strip())
    elif command == "/save":
        _save(bench)
    else:
        print(visible_text(f"(unknown command {command}: /help lists them; // sends a message starting with /)"))
    return False


def _set_system_prompt(bench: Bench, text: str) -> None:
    for state in bench.panes:
        if state.engine is None or state.params is None:
            continue
        if not hasattr(state.params, "system_prompt"):
            print(f"({state.engine.family} has no system prompt: its prompt format has none)")
            continue
        state.params = state.params.with_overrides({"system_prompt": text})
    print("(system prompt set)" if text else "(system prompt cleared)")


def _save(bench: Bench) -> None:
    from zhbench.workbench.session.config import exports_dir
    from zhbench.workbench.session.transcripts import export_session

    if bench.transcript is None:
        print("(nothing to save yet: the session starts with its first message)")
        return
    for path in export_session(bench.transcript.path, exports_dir()):
        print(visible_text(f"(wrote {path})"))


def _stream_reply(bench: Bench, job: ReplyJob) -> None:
    """Run one reply of the bench, streamed to stdout and recorded as the app records it; a failed reply
    is recorded with what came, and said on stderr."""

    def progressed(piece: str) -> None:
        bench.reply_progressed(job.pane, job.generation, piece)

    try:
        reply = stream_to_stdout(job.engine, job.history, job.params, on_piece=progressed)
    except GenerationError as exc:
        partial = exc.partial if isinstance(exc.partial, Reply) else None
        bench.reply_failed(job.pane, job.generation, str(exc), partial)
        print(f"zhbench: error: {exc}", file=sys.stderr)
        return
    bench.reply_finished(job.pane, job.generation, reply)


def _json_reply(bench: Bench, job: ReplyJob) -> dict[str, object]:
    try:
        reply = job.engine.reply(job.history, job.params, cancel=job.cancel)
    except GenerationError as exc:
        partial = exc.partial if isinstance(exc.partial, Reply) else None
        bench.reply_failed(job.pane, job.generation, str(exc), partial)
        raise
    bench.reply_finished(job.pane, job.generation, reply)
    return reply_json(reply, job.engine.describe())


def _new_bench(args: argparse.Namespace) -> Bench:
    """One pane with the model ``--model`` names, with the options' settings; saved in the transcripts."""
    from zhbench.workbench.session.bench import Bench
    from zhbench.workbench.session.config import transcripts_dir

    engine = load(args)
    bench = Bench(transcripts_dir(), pane_count=1)
    _put(bench, "a", args.model, engine, params(engine, args))
    return bench


def _session_bench(args: argparse.Namespace, spec: str) -> Bench:
    """A saved session's panes with their conversations and their models loaded again (with the settings
    of their last replies), the next message to be appended to its file. A model that is not here leaves
    its pane out, with the reason on stderr; an arena round or a session with none of its models is refused."""
    from zhbench.engines.api import default_params
    from zhbench.workbench.session.bench import Bench
    from zhbench.workbench.session.config import load_config, transcripts_dir
    from zhbench.workbench.session.reopen import continue_in, model_spec, reopen
    from zhbench.workbench.session.transcripts import find_session

    reopened = reopen(find_session(transcripts_dir(), spec))
    if reopened.arena:
        raise CommandError(f"{reopened.session.id} is an arena round: it can be read (zhbench export), not continued")
    for note in reopened.notes:
        print(f"zhbench: {note}", file=sys.stderr)
    servers = load_config().servers
    bench = Bench(transcripts_dir(), pane_count=len(reopened.panes) or 1)
    for state in bench.panes:
        recorded = reopened.models.get(state.name)
        found, why = model_spec(recorded, servers)
        if found is None or recorded is None:
            if recorded is not None:
                print(visible_text(f"zhbench: pane {state.name.upper()} stays as it was: {why}"), file=sys.stderr)
            continue
        engine = load(args, found)
        settings = default_params(engine)
        try:
            settings = settings.with_overrides(reopened.params.get(state.name, {}))
            settings.validate()
        except ValueError as exc:
            print(
                f"zhbench: pane {state.name.upper()}: its settings no longer apply ({exc}); defaults", file=sys.stderr
            )
            settings = default_params(engine)
        try:  # what is given on this command line (--seed, --temperature, --set ...) goes on top
            settings = with_command_line_settings(engine, settings, args)
        except ValueError as exc:
            raise CommandError(f"pane {state.name.upper()}: {exc}") from None
        _put(bench, state.name, recorded.model or found, engine, settings, demo=recorded.demo)
    if not any(state.engine is not None for state in bench.panes):
        raise CommandError(f"none of the models of {reopened.session.id} can be loaded here")
    continue_in(bench, reopened)
    return bench


def _put(
    bench: Bench, name: str, label: str, engine: ChatEngine, settings: GenerationParams, *, demo: bool = False
) -> None:
    generation = bench.begin_load(name, label, keep_conversation=True)
    assert generation is not None  # a new bench's panes are idle
    bench.model_loaded(name, generation, engine, demo=demo)
    bench.pane(name).params = settings


def _show_conversation(bench: Bench) -> None:
    """A resumed session's conversation so far, as each pane shows it."""
    for state in bench.panes:
        for entry in state.shown:
            who = "user" if entry.role == "user" else (state.name.upper() if len(bench.panes) > 1 else "bot")
            print(visible_text(f"{who}> {entry.text}"))


def _command_list(commands: dict[str, str]) -> str:
    return " · ".join(f"{command} ({meaning})" for command, meaning in commands.items())


def _keep_undecodable_input() -> None:
    """Decode stdin so that bytes that are not UTF-8 come through as lone surrogates, one line at a time:
    strict decoding would raise out of ``input`` and end the chat, losing the conversation."""
    if isinstance(sys.stdin, io.TextIOWrapper):
        sys.stdin.reconfigure(errors="surrogateescape")
