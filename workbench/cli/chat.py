"""``prompt``, ``ask`` and ``chat``: one model from the command line."""

from __future__ import annotations

import argparse
import io
import json
import sys
from pathlib import Path

from zhbench.engines.api import MessagesInspecting, PromptInspecting
from zhbench.engines.types import Message, is_encodable
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
)
from zhbench.workbench.session.safe_text import visible_text


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
    model_options(ask)
    ask.add_argument("--history", type=Path, help="earlier turns, a JSON list of {role, content} messages")
    ask.add_argument("--json", action="store_true", help="print one JSON object when the reply is done")
    param_options(ask)
    ask.add_argument("text", metavar="TEXT", help="the user's message")
    ask.set_defaults(handler=cmd_ask)

    chat = commands.add_parser("chat", help="a plain multi-turn chat in this terminal")
    model_options(chat)
    param_options(chat)
    chat.set_defaults(handler=cmd_chat)


def cmd_prompt(args: argparse.Namespace) -> int:
    history = read_history(args.history, answerable=True)  # a bad file is refused before a model loads
    engine = load(args)
    if isinstance(engine, MessagesInspecting):  # a server builds the prompt itself: it has no ids to show
        messages = engine.messages_for(history, params(engine, args))
        shown_messages = {"family": engine.family, "messages": messages} if args.json else messages
        print(json.dumps(shown_messages, ensure_ascii=False, indent=None if args.json else 2))
        return 0
    if not isinstance(engine, PromptInspecting):
        raise CommandError(f"{engine.family} runs elsewhere: it has no prompt ids to show")
    prompt = engine.prompt_for(history, params(engine, args))
    if args.json:
        shown = {"family": engine.family, "text": prompt.text, "input_ids": prompt.input_ids}
        print(json.dumps(shown, ensure_ascii=False))
    else:
        print(visible_text(prompt.text))
        print(" ".join(map(str, prompt.input_ids)))
    return 0


def cmd_ask(args: argparse.Namespace) -> int:
    history = read_history(args.history) if args.history else []  # refused before a model loads
    history.append({"role": "user", "content": command_line_text(args.text, "TEXT")})
    engine = load(args)
    settings = params(engine, args)
    if args.json:
        reply = engine.reply(history, settings)
        print(json.dumps(reply_json(reply), ensure_ascii=False))
        return 0
    reply = stream_to_stdout(engine, history, settings)
    return EXIT_INTERRUPTED if reply.stats.stop_reason.value == "cancelled" else 0


#: the commands ``chat`` itself answers (a model's own commands are listed apart and go to the model)
CHAT_COMMANDS = {"/help": "list the commands", "/reset": "clear the conversation"}


def cmd_chat(args: argparse.Namespace) -> int:
    engine = load(args)
    settings = params(engine, args)
    info = engine.describe()
    print(f"{info.family} · {info.path or info.details.get('base_url')} · {info.placement()}")
    print("Enter sends · /help lists the commands · Ctrl+C stops a reply · Ctrl+D quits")
    model_commands = engine.chat_commands()
    if model_commands:
        print("Model commands: " + _command_list(model_commands))
    _keep_undecodable_input()
    history: list[Message] = []
    while True:
        try:
            text = input("user> ")
        except (EOFError, KeyboardInterrupt):
            print()  # the shell's prompt starts on a line of its own
            return 0
        if not is_encodable(text):
            print("(not sent: that line is not valid UTF-8 text)")
            continue
        if text.strip() == "/help":
            print("Commands: " + _command_list(CHAT_COMMANDS))
            if model_commands:
                print("Model commands: " + _command_list(model_commands))
            continue
        if text.strip() == "/reset":
            history.clear()
            print("(conversation cleared)")
            continue
        history.append({"role": "user", "content": text})
        print("bot> ", end="", flush=True)
        reply = stream_to_stdout(engine, history, settings)
        history.append({"role": "assistant", "content": reply.history_content})


def _command_list(commands: dict[str, str]) -> str:
    return " · ".join(f"{command} ({meaning})" for command, meaning in commands.items())


def _keep_undecodable_input() -> None:
    """Decode stdin so that bytes that are not UTF-8 come through as lone surrogates, one line at a time:
    strict decoding would raise out of ``input`` and end the chat, losing the conversation."""
    if isinstance(sys.stdin, io.TextIOWrapper):
        sys.stdin.reconfigure(errors="surrogateescape")
