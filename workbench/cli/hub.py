"""``pull`` and ``rm``: fetching a model from Hugging Face or ModelScope into their caches, and removing it."""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING

from zhbench.plain.byte_sizes import format_bytes
from zhbench.plain.safe_text import json_text, visible_text
from zhbench.workbench.cli.common import EXIT_INTERRUPTED, CommandError, Commands

if TYPE_CHECKING:
    from zhbench.engines.hub.download import ProgressCallback, PullProgress
    from zhbench.engines.hub.hubs import PullPlan


def register(commands: Commands) -> None:
    pull = commands.add_parser(
        "pull",
        help="download a model's files (only those its family needs) into the Hugging Face or ModelScope cache",
        description="Download a model into its hub's own cache, where zhbench and other tools find it. "
        "Mirrors: HF_ENDPOINT (e.g. https://hf-mirror.com); ModelScope: MODELSCOPE_ENDPOINT.",
    )
    pull.add_argument("id", metavar="ID", help="the hub id, OWNER/NAME (a catalog id with --from modelscope: its copy)")
    pull.add_argument("--from", dest="hub", choices=("hf", "modelscope"), default="hf", help="the hub (default: hf)")
    pull.add_argument("--revision", metavar="R", help="a branch, tag or commit (default: main; ModelScope: master)")
    pull.add_argument(
        "--file",
        metavar="PATTERN",
        help="the weight file(s) to take, a name or a glob; needed for a repository of several RWKV checkpoints",
    )
    pull.add_argument(
        "--quant",
        metavar="TYPE",
        help="a GGUF repository's quantization to take, e.g. q4_k_m, q8_0, f16 (default: the config's quant, "
        "else it lists them and asks)",
    )
    pull.set_defaults(handler=cmd_pull)

    rm = commands.add_parser("rm", help="remove a downloaded model from the Hugging Face and ModelScope caches")
    rm.add_argument("id", metavar="ID", help="the hub id, OWNER/NAME")
    rm.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    rm.set_defaults(handler=cmd_rm)


def hub_id(model_id: str, hub: str) -> str:
    """The id to ask ``hub`` for: a catalog model's ModelScope id when it has one under another name."""
    from zhbench.engines.hub.catalog import CATALOG

    if hub == "modelscope":
        entry = next((e for e in CATALOG if e.id.lower() == model_id.lower()), None)
        if entry is not None and entry.modelscope_id:
            return entry.modelscope_id
    return model_id


def cmd_pull(args: argparse.Namespace) -> int:
    from zhbench.engines.hub.download import pull
    from zhbench.engines.hub.hubs import DownloadCancelled

    repo_id = hub_id(args.id, args.hub)
    plan = _plan(args, repo_id)
    print(
        visible_text(
            f"{repo_id} from {plan.endpoint}: {len(plan.files)} files, {format_bytes(plan.total_bytes)}"
            + (f" ({format_bytes(plan.cached_bytes)} already here)" if plan.cached_bytes else "")
        ),
        file=sys.stderr,
    )
    if plan.skipped:
        shown = ", ".join(plan.skipped[:6]) + (f", … ({len(plan.skipped) - 6} more)" if len(plan.skipped) > 6 else "")
        print(visible_text(f"not fetched (not needed): {shown}"), file=sys.stderr)  # names the hub gave
    try:
        with _progress_bar(plan.total_bytes) as report:
            folder = pull(plan, on_progress=report)
    except (KeyboardInterrupt, DownloadCancelled):
        print("stopped: run the same pull again to finish it", file=sys.stderr)
        return EXIT_INTERRUPTED
    print(visible_text(f"pulled {repo_id} into {folder}"), file=sys.stderr)
    ggufs = [f.name for f in plan.files if f.name.endswith(".gguf")]
    model = str(folder / ggufs[0]) if ggufs else repo_id  # a file of several: the (first) file of the one pulled
    print(visible_text(f"try it: zhbench chat --model {model}"), file=sys.stderr)
    return 0


def _plan(args: argparse.Namespace, repo_id: str) -> PullPlan:
    """The pull's plan; for a GGUF repository pulled without ``--quant``, of the config's ``quant`` when the
    repository offers it, else of the one the person picks from the list (off a terminal: the list, as an error)."""
    from zhbench.engines.hub.download import QuantizationNeeded, plan_pull
    from zhbench.workbench.session.config import load_config

    def plan(quant: str | None, preferred: str | None = None) -> PullPlan:
        return plan_pull(
            repo_id, hub=args.hub, revision=args.revision, pick=args.file, quant=quant, preferred_quant=preferred
        )

    try:
        return plan(args.quant, load_config().quant)
    except QuantizationNeeded as needed:
        if not sys.stdin.isatty():
            raise CommandError(f"{repo_id}: {needed}") from None
        print(visible_text(f"{repo_id} offers these quantizations:"), file=sys.stderr)
        for quant, size in needed.offers.items():
            print(visible_text(f"  {quant:<10} {format_bytes(size)}"), file=sys.stderr)
        try:
            answer = input("quantization to pull: ").strip()
        except EOFError:
            answer = ""
        if not answer:
            raise CommandError(f"{repo_id}: no quantization chosen; nothing pulled") from None
        return plan(answer)


@contextlib.contextmanager
def _progress_bar(total: int) -> Iterator[ProgressCallback]:
    """A Rich progress bar on stderr with bytes, speed and time left; yields the callback that moves it
    (called from the download threads: Rich's progress is thread-safe)."""
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    columns = (
        TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(), TimeRemainingColumn(),
    )  # fmt: skip
    with Progress(*columns, console=Console(stderr=True)) as progress:
        task = progress.add_task("download", total=total)

        def report(update: PullProgress) -> None:
            progress.update(task, completed=update.done_bytes, description=update.file[-40:])

        yield report


def cmd_rm(args: argparse.Namespace) -> int:
    from zhbench.engines.hub.caches import cached_copies, remove_cached
    from zhbench.engines.hub.hubs import NotAModelIdError

    try:
        copies = cached_copies(args.id)
    except NotAModelIdError as exc:
        shown = json_text(args.id if len(args.id) <= 100 else args.id[:100] + "…")  # quoted, controls escaped
        raise CommandError(f"{shown}: {exc} (rm removes a downloaded model by its hub id)") from None
    if not copies:
        raise CommandError(f"{args.id} is in neither the Hugging Face nor the ModelScope cache")
    for copy in copies:
        what = f"{copy.folder} (a link to {copy.link_to}: only the link)" if copy.link_to else str(copy.folder)
        print(f"{copy.hub:<10} {format_bytes(copy.size_bytes):>10}  {visible_text(what)}", file=sys.stderr)
    if not args.yes and not _confirmed(f"remove {args.id} ({format_bytes(sum(c.size_bytes for c in copies))})?"):
        print("nothing removed", file=sys.stderr)
        return 1
    for copy in copies:
        remove_cached(copy)
    print(f"removed {args.id}", file=sys.stderr)
    return 0


def _confirmed(question: str) -> bool:
    """Whether the person answers yes; with no terminal to ask on, or no answer, it is no."""
    if not sys.stdin.isatty():
        print("no terminal to ask on: pass --yes to remove without asking", file=sys.stderr)
        return False
    try:
        return input(f"{question} [y/N] ").strip().lower() in ("y", "yes")
    except EOFError:
        print("\n(no answer: pass --yes to remove without asking)", file=sys.stderr)
        return False
