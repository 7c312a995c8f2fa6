"""``leaderboard`` and ``votes export``: the arena's ranking, and its votes in FastChat's format."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from zhbench.plain.safe_text import visible_text
from zhbench.workbench.cli.common import CommandError, Commands, output_option, write_output, write_stdout
from zhbench.workbench.session.arena.board_text import BOARD_FORMATS

#: the longest name ``votes rename`` gives a model (a hub id is at most 96 characters)
MAX_MODEL_NAME = 200

if TYPE_CHECKING:
    from zhbench.workbench.session.arena.votes import Battle, Outcome


def register(commands: Commands) -> None:
    board = commands.add_parser(
        "leaderboard", help="Bradley–Terry ratings with 95%% intervals, from the arena votes or a FastChat file"
    )
    board.add_argument(
        "--format",
        choices=tuple(BOARD_FORMATS),
        default="text",
        help="text (default: the table with its intervals as bars), csv, md (a Markdown table) or json",
    )
    board.add_argument("--json", action="store_true", help="print a JSON object (the same as --format json)")
    board.add_argument("--include-named", action="store_true", help="also count votes cast knowing the models")
    board.add_argument(
        "--include-leaked", action="store_true", help="also count battles in which a reply named its maker"
    )
    board.add_argument(
        "--include-judge",
        action="store_true",
        help="also count votes of a judge model (zhbench batch judge --to-votes)",
    )
    board.add_argument(
        "--bootstrap",
        type=int,
        default=100,
        metavar="N",
        help="bootstrap rounds for the intervals (default 100; 0: none)",
    )
    board.add_argument("--seed", type=int, default=0, metavar="S", help="the bootstrap's seed (default 0)")
    board.add_argument(
        "--style-control",
        action="store_true",
        help="rate with reply length and Markdown (headers, lists, bold) held equal",
    )
    board.add_argument("--anchor", metavar="MODEL", help="put this model at 1000 (default: the mean is 1000)")
    board.add_argument(
        "--battles", type=Path, metavar="FILE", help="rank the battles of a FastChat clean-battle JSON file instead"
    )
    board.set_defaults(handler=cmd_leaderboard)

    votes = commands.add_parser("votes", help="the stored arena votes")
    actions = votes.add_subparsers(dest="votes_action", metavar="ACTION", required=True)
    export = actions.add_parser("export", help="write every stored vote as a FastChat clean-battle JSON file")
    export.add_argument("--format", choices=("fastchat",), default="fastchat")
    output_option(export)
    export.set_defaults(handler=cmd_votes_export)
    rename = actions.add_parser(
        "rename",
        help="name the model OLD NEW in every stored vote, merging it into NEW where NEW has votes too "
        "(OLD#FINGERPRINT, as the leaderboard shows two models that share an id, renames one of them)",
    )
    rename.add_argument("old", metavar="OLD")
    rename.add_argument("new", metavar="NEW")
    rename.set_defaults(handler=cmd_votes_rename)


def cmd_leaderboard(args: argparse.Namespace) -> int:
    from zhbench.workbench.session.arena.leaderboard import compute_leaderboard, select_outcomes

    if args.bootstrap < 0:
        raise CommandError(f"--bootstrap takes 0 or more rounds, got {args.bootstrap}")
    outcomes, skipped, source, notes = _outcomes(args.battles)
    selection = select_outcomes(
        outcomes,
        include_named=args.include_named,
        include_leaked=args.include_leaked,
        include_judge=args.include_judge,
    )
    board = compute_leaderboard(
        selection.outcomes, rounds=args.bootstrap, seed=args.seed, anchor=args.anchor, style_control=args.style_control
    )
    form = "json" if args.json else args.format
    write_stdout(BOARD_FORMATS[form](board, selection, skipped, source))
    for note in notes:  # under the table on screen; beside a file's output, which it must not break
        print(note, file=sys.stdout if form == "text" else sys.stderr)
    return 0


def cmd_votes_rename(args: argparse.Namespace) -> int:
    from zhbench.workbench.session.arena.identities import split_fingerprint
    from zhbench.workbench.session.arena.votes import VoteStore, votes_path

    old, fingerprint = split_fingerprint(args.old)
    new = args.new.strip()
    if not new or (new == old and not fingerprint):
        raise CommandError(f"votes rename needs a new name other than {args.old!r}")
    if visible_text(new) != new or any(c in new for c in "\n\t") or len(new) > MAX_MODEL_NAME:
        # a name is shown in every table, terminal and report: a control character would act or break rows
        raise CommandError(f"a model's name has no control characters, tabs or newlines, and at most "
                           f"{MAX_MODEL_NAME} characters: {new!r} is refused")
    if not votes_path().exists():
        raise CommandError("no votes are stored yet: nothing to rename")
    with VoteStore.open() as store:
        changed = store.rename_model(old, new, fingerprint=fingerprint)
    if not changed:
        raise CommandError(f"no stored vote names {args.old!r} (`zhbench leaderboard` lists the names)")
    write_stdout(f"{args.old} is {new} now, in {changed} battle{'s' * (changed != 1)}\n")
    return 0


def cmd_votes_export(args: argparse.Namespace) -> int:
    from zhbench.workbench.session.arena.fastchat import to_fastchat_json
    from zhbench.workbench.session.arena.identities import shared_id_notes, told_apart

    battles, shared = told_apart(_stored_battles())  # two models of one id stay two in the file too
    write_output(args.output, to_fastchat_json(battles))
    for note in shared_id_notes(shared):
        print(note, file=sys.stderr)
    return 0


def _stored_battles() -> list[Battle]:
    """Every stored vote; none (and no database made) when nothing was ever voted."""
    from zhbench.workbench.session.arena.votes import VoteStore, bring_up_to_date, votes_path

    if not votes_path().exists():
        return []
    bring_up_to_date()
    with VoteStore.open(read_only=True) as store:  # reading takes no lock, and works on a read-only disk
        return store.battles()


def _outcomes(battles_file: Path | None) -> tuple[list[Outcome], dict[str, int], str, list[str]]:
    """The battles to rank, what was skipped reading them (by reason), where they came from, and a line for
    each id that two different models share (ranked apart)."""
    from zhbench.workbench.session.arena.fastchat import read_fastchat_battles
    from zhbench.workbench.session.arena.identities import ranked_outcomes
    from zhbench.workbench.session.arena.votes import votes_path

    if battles_file is not None:
        found = read_fastchat_battles(battles_file)
        return found.outcomes, found.skipped, str(battles_file), []
    outcomes, notes = ranked_outcomes(_stored_battles())
    return outcomes, {}, str(votes_path()), notes
