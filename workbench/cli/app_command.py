"""``zhbench`` with no command: the app, with ``--a``/``--b`` (or ``--pane``, up to four) models already
loading; ``zhbench arena``: the app opened on the blind arena.

The one command-line module that reaches the screen layer, and only when it runs.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from zhbench.workbench.cli.common import CommandError, Commands

if TYPE_CHECKING:
    from zhbench.workbench.app import ZhbenchApp


def add_app_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--a", metavar="M", help="open the app with model M (folder, .pth file or hub id) in pane A")
    parser.add_argument("--b", metavar="M", help="open the app with model M in pane B")
    parser.add_argument(
        "--pane",
        action="append",
        default=[],
        metavar="M",
        help="open the app with model M in the next pane, A first (repeatable: up to 4 panes side by side)",
    )
    parser.add_argument("--device", dest="app_device", metavar="DEVICE", help="where the app loads models (cpu, cuda)")


def cmd_app(args: argparse.Namespace) -> int:
    from zhbench.workbench.app import ZhbenchApp
    from zhbench.workbench.session.panes import APP_PANES, PANE_NAMES

    if args.pane and (args.a or args.b):
        raise CommandError("--pane fills the panes from A on: give every model with --pane, or use --a and --b")
    if len(args.pane) > APP_PANES[-1]:
        raise CommandError(f"at most {APP_PANES[-1]} panes side by side, not {len(args.pane)} (--pane)")
    preload = dict(zip(PANE_NAMES, args.pane, strict=False)) if args.pane else {"a": args.a, "b": args.b}
    return _run(ZhbenchApp(preload=preload, device=args.app_device))


def register(commands: Commands) -> None:
    arena = commands.add_parser(
        "arena", help="open the app on the blind arena: two models answer unnamed; vote, then see which"
    )
    arena.add_argument(
        "--pool",
        action="append",
        metavar="M",
        default=[],
        help="a model to draw from (folder, .pth file or hub id; repeatable; default: every model on this machine)",
    )
    arena.add_argument(
        "--batch",
        type=Path,
        metavar="DIR",
        help="review the answers of this batch run instead: two models' answers to each item, blind, one vote each",
    )
    arena.add_argument(
        "--own-decoding",
        action="store_true",
        help="each model at its own upstream decoding (beam search where its family uses it), not the arena's "
        "preset that samples both sides alike",
    )
    arena.set_defaults(handler=cmd_arena)


def cmd_arena(args: argparse.Namespace) -> int:
    from zhbench.workbench.app import ZhbenchApp
    from zhbench.workbench.session.arena.rounds import Contender

    if args.batch is not None:
        if args.pool:
            raise CommandError("--batch reviews a run's answers: it takes no --pool")
        return _run(ZhbenchApp(review=args.batch, device=args.app_device))
    pool = [Contender(spec) for spec in args.pool]
    return _run(ZhbenchApp(arena_pool=pool, arena_own_decoding=args.own_decoding, device=args.app_device))


def _run(app: ZhbenchApp) -> int:
    """Run the app; its exit status: non-zero when it ended on an error (Textual prints the traceback)."""
    app.run()
    return app.return_code or 0
