"""``models`` and ``make-tiny``: what zhbench can run, and tiny stand-ins to try it with."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from zhbench.plain.byte_sizes import format_bytes
from zhbench.plain.model_rows import FIT_MARKS, ModelRow
from zhbench.plain.safe_text import json_text, visible_text
from zhbench.workbench.cli.common import CommandError, Commands


def register(commands: Commands) -> None:
    models = commands.add_parser("models", help="list the catalog and the models found locally")
    models.add_argument("--json", action="store_true", help="print a JSON list")
    models.add_argument(
        "--dir", action="append", type=Path, default=[],
        help="also look in this folder, besides the config's model_dirs (repeatable)",
    )
    models.set_defaults(handler=cmd_models)

    tiny = commands.add_parser(
        "make-tiny", help="write a tiny random-weight stand-in of a family", formatter_class=_FamiliesListed
    )
    tiny.add_argument("family", metavar="FAMILY", help="a registered family (listed below)")
    tiny.add_argument("dir", metavar="DIR", type=Path, help="the folder to write, new or empty")
    tiny.add_argument("--force", action="store_true", help="write into DIR even though it holds files")
    tiny.add_argument(
        "--weights", metavar="FORMAT", help="weights file format, as the family allows: bin, safetensors, pth "
        "(default: the published one)"
    )
    tiny.add_argument("--template", metavar="FILE", help="chat-template, gguf: the .jinja chat template to ship")
    tiny.add_argument("--tokenizer", metavar="DIR", help="chat-template, gguf: a folder whose tokenizer files to take")
    tiny.add_argument("--quant", metavar="TYPE", help="gguf: the tensor type, f32, f16 or q8_0 (default q8_0)")
    tiny.set_defaults(handler=cmd_make_tiny)


def cmd_models(args: argparse.Namespace) -> int:
    from zhbench.engines.hub.discovery import local_models
    from zhbench.engines.registry import family_problems
    from zhbench.workbench.session.config import load_config
    from zhbench.workbench.session.memory import NvmlReader
    from zhbench.workbench.session.model_specs import list_server_models
    from zhbench.workbench.session.offer import rows_on_offer, server_problems, server_rows, with_fit

    for problem in family_problems():
        print(visible_text(f"zhbench: warning: {problem}"), file=sys.stderr)
    config = load_config()
    listings = list_server_models(config.servers)
    for problem in server_problems(listings):  # after a few seconds at most: a warning, not a failure
        print(visible_text(f"zhbench: warning: {problem}"), file=sys.stderr)
    nvml = NvmlReader()  # one NVML session for the GPU count and every row's fit
    gpus, _ = nvml.read()
    local = local_models([*config.model_dirs, *args.dir])  # the app's list reads model_dirs too
    offered = [with_fit(row, None, nvml) for row in rows_on_offer(local, gpu=bool(gpus))]
    rows = [row for row in offered if row.source != "demo"] + server_rows(listings)
    if args.json:
        print(json_text([row.to_json() for row in rows], indent=2))
        return 0
    # the demos too, as the app lists them: what a newcomer can try without downloading anything
    shown = rows + [row for row in offered if row.source == "demo"]
    print(
        f"{'FAMILY':<15} {'MODEL':<42} {'PARAMS':>6} {'QUANT':<7} {'LICENCE':<10} {'MODELSCOPE':<22} "
        f"{'ON DISK':>10} {'MEMORY':>12}  WHERE"
    )
    for row in shown:  # names, ids and servers' model ids are not ours: their controls are shown, never sent
        line = (
            f"{row.family:<15} {_model(row):<42} {_parameters(row.parameters):>6} {row.quantization or '':<7} "
            f"{_licence(row):<10} {_modelscope(row):<22} {format_bytes(row.size_bytes) if row.size_bytes else '':>10} "
            f"{_memory(row):>12}  {_where(row)}"
        )
        print(visible_text(line))
    return 0


def _model(row: ModelRow) -> str:
    """What names a row's model: a local model's name as the app's list shows it (a file outside the hubs'
    caches by its name: its path is under WHERE), else its id (a catalog row's hub id, SERVER/MODEL)."""
    return row.name if row.source == "local" else row.id


def _memory(row: ModelRow) -> str:
    """A model here: its memory estimate and fit mark (``✓`` fits, ``~`` tight, ``✗`` does not fit)."""
    if row.path is None or row.estimated_bytes is None or row.problem is not None:
        return ""
    return f"{format_bytes(row.estimated_bytes)} {FIT_MARKS.get(row.fit or '', '?')}"


def _parameters(count: int | None) -> str:
    if count is None:
        return ""
    return f"{count / 1e9:.1f}B" if count >= 1e9 else f"{count / 1e6:.0f}M"


def _licence(row: ModelRow) -> str:
    """A catalog row's licence, ``?`` where it is not confirmed (left to the model card)."""
    if row.source != "catalog":
        return ""
    return row.licence or "?"


def _modelscope(row: ModelRow) -> str:
    """A catalog row's ModelScope id where it differs from the Hugging Face one, ``same id`` where it does
    not, ``—`` where the model is not on ModelScope."""
    if row.source != "catalog":
        return ""
    if row.modelscope_id is None:
        return "—"
    return "same id" if row.modelscope_id == row.id else row.modelscope_id


def _where(row: ModelRow) -> str:
    if row.problem is not None:
        return f"{row.path}: {row.problem}"
    if row.source == "demo":
        return "tiny random weights, written when the app first opens it"
    return row.base_url or (str(row.path) if row.path else "not downloaded")


class _FamiliesListed(argparse.HelpFormatter):
    """``make-tiny --help`` (and its usage line after a mistake) ending with the families it can write:
    read from the registry only when shown, since building the parser must not import every family."""

    def format_help(self) -> str:
        from zhbench.engines.registry import families

        # each family shown as a positional argument is: its name, then its line of help
        rows = [
            argparse.Action([], name, help=f"{spec.summary} ({', '.join(spec.standin_formats)})".replace("%", "%%"))
            for name, spec in families().items()
            if spec.standin is not None
        ]
        self.start_section("families (and their weight formats, the published one first)")
        self.add_arguments(rows)
        self.end_section()
        return super().format_help()


def cmd_make_tiny(args: argparse.Namespace) -> int:
    from zhbench.engines.registry import write_standin

    if not args.force and args.dir.is_dir() and any(args.dir.iterdir()):
        raise CommandError(f"{args.dir} is not empty: give --force to write the stand-in into it anyway")
    options = {name: value for name in ("template", "tokenizer", "quant") if (value := getattr(args, name)) is not None}
    path = write_standin(args.family, args.dir, args.weights, options)
    print(f"wrote a tiny random-weight {args.family} stand-in to {path}")
    return 0
