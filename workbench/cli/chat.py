"""``prompt``, ``ask`` and ``chat``: one model from the command line."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from engines.api import MessagesInspecting, PromptInspecting
from engines.types import Message
from workbench.cli.common import (
    EXIT_INTERRUPTED,
    CommandError,
    Commands,
    load,
    model_options,
    param_options,
    params,
    read_history,
    reply_json,
    stream_to_stdout,
)
from workbench.session.safe_text import visible_text


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
    engine = load(args)
    history = read_history(args.history, answerable=True)
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
    engine = load(args)
    history = read_history(args.history) if args.history else []
    history.append({"role": "user", "content": args.text})
    settings = params(engine, args)
    if args.json:
        reply = engine.reply(history, settings)
        print(json.dumps(reply_json(reply), ensure_ascii=False))
        return 0
    reply = stream_to_stdout(engine, history, settings)
    return EXIT_INTERRUPTED if reply.stats.stop_reason.value == "cancelled" else 0


def cmd_chat(args: argparse.Namespace) -> int:
    engine = load(args)
    settings = params(engine, args)
    info = engine.describe()
    print(f"{info.family} · {info.path or info.details.get('base_url')} · {info.placement()}")
    print("Enter sends · /reset clears the conversation · Ctrl+C stops a reply · Ctrl+D quits")
    commands = engine.chat_commands()
    if commands:
        print("Model commands: " + " · ".join(f"{command} ({meaning})" for command, meaning in commands.items()))
    history: list[Message] = []
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
        reply = stream_to_stdout(engine, history, settings)
        history.append({"role": "assistant", "content": reply.history_content})
