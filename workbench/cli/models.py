"""``models`` and ``make-tiny``: what zhbench can run, and tiny stand-ins to try it with."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from workbench.cli.common import Commands
from workbench.session.byte_sizes import format_bytes


def register(commands: Commands) -> None:
    models = commands.add_parser("models", help="list the catalog and the models found locally")
    models.add_argument("--json", action="store_true", help="print a JSON list")
    models.add_argument("--dir", action="append", type=Path, default=[], help="also look in this folder (repeatable)")
    models.set_defaults(handler=cmd_models)

    tiny = commands.add_parser("make-tiny", help="write a tiny random-weight stand-in of a family")
    tiny.add_argument("family", metavar="FAMILY")
    tiny.add_argument("dir", metavar="DIR", type=Path)
    tiny.add_argument(
        "--weights", metavar="FORMAT", help="weights file format, as the family allows: bin, safetensors, pth "
        "(default: the published one)"
    )
    tiny.add_argument("--template", metavar="FILE", help="chat-template: the .jinja chat template to ship")
    tiny.add_argument("--tokenizer", metavar="DIR", help="chat-template: a folder whose tokenizer files to take")
    tiny.set_defaults(handler=cmd_make_tiny)


def cmd_models(args: argparse.Namespace) -> int:
    from engines.hub.discovery import local_models
    from engines.registry import family_problems
    from workbench.session.config import load_config
    from workbench.session.model_specs import list_server_models
    from workbench.session.offer import rows_on_offer, server_problems, server_rows

    for problem in family_problems():
        print(f"zhbench: warning: {problem}", file=sys.stderr)
    listings = list_server_models(load_config().servers)
    for problem in server_problems(listings):  # after a few seconds at most: a warning, not a failure
        print(f"zhbench: warning: {problem}", file=sys.stderr)
    rows = [row for row in rows_on_offer(local_models(args.dir), gpu=False) if row.source != "demo"]
    rows += server_rows(listings)
    if args.json:
        print(json.dumps([row.to_json() for row in rows], ensure_ascii=False, indent=2))
        return 0
    for row in rows:
        where = row.base_url or (str(row.path) if row.path else "not downloaded")
        size = format_bytes(row.size_bytes) if row.size_bytes is not None else ""
        print(f"{row.family:<15} {row.id:<42} {size:>10}  {where}")
    return 0


def cmd_make_tiny(args: argparse.Namespace) -> int:
    from engines.registry import write_standin

    options = {name: value for name in ("template", "tokenizer") if (value := getattr(args, name)) is not None}
    path = write_standin(args.family, args.dir, args.weights, options)
    print(f"wrote a tiny random-weight {args.family} stand-in to {path}")
    return 0
