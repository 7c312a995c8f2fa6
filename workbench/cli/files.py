"""``paths``, ``transcripts`` and ``export``: where zhbench keeps its files, and the saved sessions."""

from __future__ import annotations

import argparse
import sys

from zhbench.plain.safe_text import json_text, visible_text
from zhbench.workbench.cli.common import Commands, command_line_text, output_option, write_output
from zhbench.workbench.session.output_formats import formats_help
from zhbench.workbench.session.transcripts import EXPORT_DAMAGE, EXPORT_FORMATS


def register(commands: Commands) -> None:
    paths = commands.add_parser("paths", help="where the config, transcripts, exports and demo models are")
    paths.add_argument("--json", action="store_true", help="print a JSON object")
    paths.set_defaults(handler=cmd_paths)

    transcripts = commands.add_parser("transcripts", help="list the saved sessions, or find them by their text")
    transcripts.add_argument("--json", action="store_true", help="print a JSON list")
    transcripts.add_argument(
        "--search", metavar="TEXT", help="only the sessions where a message or reply contains TEXT (any case)"
    )
    transcripts.set_defaults(handler=cmd_transcripts)

    export = commands.add_parser(
        "export", help="write a saved session as " + " or ".join(form.description for form in EXPORT_FORMATS.values())
    )
    export.add_argument("session", metavar="SESSION", help="a session id (or its start), a .jsonl file, or latest")
    export.add_argument("--format", choices=tuple(EXPORT_FORMATS), default="md", help=formats_help(EXPORT_FORMATS))
    output_option(export)
    export.add_argument(
        "--all-branches",
        action="store_true",
        help="every branch of an edited message, those not shown marked (default: the conversation as shown)",
    )
    export.set_defaults(handler=cmd_export)


def cmd_paths(args: argparse.Namespace) -> int:
    from zhbench.workbench.session.config import user_paths

    found = {name: str(path) for name, path in user_paths().items()}
    if args.json:
        print(json_text(found, indent=2))
    else:
        for name, path in found.items():
            print(visible_text(f"{name:<12} {path}"))
    return 0


def cmd_transcripts(args: argparse.Namespace) -> int:
    from zhbench.workbench.session.config import transcripts_dir
    from zhbench.workbench.session.search import find_sessions

    folder = transcripts_dir()
    query = command_line_text(args.search, "--search") if args.search else None
    found = find_sessions(folder, query)
    for note in found.notes:
        print(visible_text(f"zhbench: {note}"), file=sys.stderr)
    if args.json:
        print(json_text([row.to_json() for row in found.rows], indent=2))
        return 0
    if not found.rows:
        nothing = f"no saved session contains {query!r} in {folder}" if query else f"no saved sessions in {folder}"
        print(visible_text(nothing))
    for row in found.rows:
        if row.error is not None:
            print(visible_text(f"unreadable: {row.error}"))
            continue
        models = " | ".join(f"{k.upper()}: {m or '-'}" for k, m in row.models.items())
        arena = "  arena" if row.arena else ""
        first = row.first_message.split("\n", 1)[0][:60]
        print(visible_text(f"{row.id}  {row.messages:>4} messages  {models}{arena}  {first}"))
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from zhbench.workbench.session.config import transcripts_dir
    from zhbench.workbench.session.transcripts import find_session

    session = find_session(transcripts_dir(), args.session)
    session.all_branches = args.all_branches
    damage = session.damage_note(EXPORT_DAMAGE)
    if damage:
        print(visible_text(f"zhbench: {session.id}: {damage}"), file=sys.stderr)
    write_output(args.output, EXPORT_FORMATS[args.format].write(session))
    return 0
