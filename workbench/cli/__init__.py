"""The ``zhbench`` command line: one module per command group. Its commands and JSON shapes are stable:
scripts depend on them. Importing it loads neither Textual nor torch."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from zhbench.engines.errors import ZhbenchError
from zhbench.plain.safe_text import visible_text
from zhbench.workbench.cli import app_command, arena, batch, chat, files, hub, models, serve
from zhbench.workbench.cli.common import EXIT_ERROR, EXIT_INTERRUPTED, CommandError
from zhbench.workbench.session.transcripts import TranscriptError


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        args.handler = app_command.cmd_app
    elif args.a or args.b or args.pane:
        parser.error("--a, --b and --pane open the app: give them without a command")
    try:
        return int(args.handler(args) or 0)
    except (ZhbenchError, CommandError, TranscriptError, ValueError) as exc:
        print(visible_text(f"zhbench: error: {exc}"), file=sys.stderr)  # ids, names and servers' words in it
        return EXIT_ERROR
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="zhbench",
        description="Run Chinese chat models locally and compare them. With no command, opens the app.",
    )
    parser.set_defaults(command=None)
    parser.add_argument("--version", action=_ShowVersion)
    app_command.add_app_options(parser)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    models.register(commands)
    chat.register(commands)
    files.register(commands)
    app_command.register(commands)
    arena.register(commands)
    hub.register(commands)
    batch.register(commands)
    serve.register(commands)
    return parser


class _ShowVersion(argparse.Action):
    """``--version``: the installed package's version, looked up only when asked for (a metadata scan)."""

    def __init__(self, option_strings: list[str], dest: str, **_: object) -> None:
        super().__init__(option_strings, dest, nargs=0, help="print zhbench's version and exit")

    def __call__(self, parser: argparse.ArgumentParser, *_: object) -> None:
        from importlib.metadata import version

        print(f"zhbench {version('zhbench')}")
        parser.exit()


if __name__ == "__main__":
    sys.exit(main())
