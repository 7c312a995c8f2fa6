"""``batch``, ``batch judge`` and ``batch report``: a prompt set through several models, resumable; a judge
model's pairwise verdicts on the answers, resumable too; and the side-by-side report.

Judging is a command of its own over a run folder rather than an option of the run: it takes its own model
and decoding settings (the ``--set`` options go to the judge), it can judge a run that is still going or was
stopped, and another judge or prompt judges the same answers into a file of its own without touching them."""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from zhbench.plain.safe_text import visible_text
from zhbench.workbench.cli.common import (
    EXIT_ERROR,
    EXIT_INTERRUPTED,
    CommandError,
    Commands,
    load,
    load_options,
    output_option,
    param_options,
    params,
    write_output,
)
from zhbench.workbench.session.batch.report_formats import REPORT_FORMATS
from zhbench.workbench.session.model_specs import SPEC_HELP
from zhbench.workbench.session.output_formats import format_of_suffix, formats_help

#: what a run shown with progress returns
Done = TypeVar("Done")

if TYPE_CHECKING:
    from rich.progress import TaskID

    from zhbench.workbench.session.batch.prompts import PromptSet
    from zhbench.workbench.session.batch.runner import ModelProgress
    from zhbench.workbench.session.batch.store import RunSettings

USAGE = """zhbench batch (PROMPTS | --builtin NAME) --model M --model M2 [--model M3 ...] [options]
       zhbench batch --list-builtin
       zhbench batch judge DIR --judge M [--baseline M] [--judge-prompt FILE] [--to-votes] [options]
       zhbench batch report DIR [--format {formats}] [-o FILE]"""


def register(commands: Commands) -> None:
    batch = commands.add_parser(
        "batch",
        usage=USAGE.format(formats="|".join(REPORT_FORMATS)),
        help="run a prompt set through several models (resumable); `batch judge DIR` judges the answers, "
        "`batch report DIR` shows them",
        description="Answer every prompt of a set with every model, one model loaded at a time. Each answer is "
        "on disk the moment it is finished: run the same command again to continue a run that stopped.",
    )
    batch.add_argument(
        "prompts",
        nargs="?",
        metavar="PROMPTS",
        help='a JSONL file ({"id", "prompt" | "messages", "category", "reference"} a line), a CSV file with a '
        '"prompt" column, or a text file with one prompt a line; or the word "judge" or "report" followed by a '
        "run folder",
    )
    batch.add_argument("run_dir", nargs="?", metavar="DIR", type=Path, help=argparse.SUPPRESS)
    run = batch.add_argument_group("running a set")
    run.add_argument("--builtin", metavar="NAME", help="a set that ships with zhbench instead of PROMPTS: zh-basic")
    run.add_argument(
        "--list-builtin", action="store_true", help="list the sets that ship with zhbench, with their categories"
    )
    run.add_argument("--limit", type=int, metavar="N", help="run only the first N items (after --category, --ids)")
    run.add_argument(
        "--category",
        action="append",
        default=[],
        metavar="C",
        help="run only the items of this category (repeatable; `--list-builtin` lists the built-in set's)",
    )
    run.add_argument(
        "--ids", action="append", default=[], metavar="ID[,ID...]", help="run only the items with these ids"
    )
    run.add_argument(
        "--model",
        action="append",
        default=[],
        metavar="M",
        help=f"a model folder, a .pth file, a cached hub id, or SERVER/MODEL ({SPEC_HELP}); repeat for each model",
    )
    run.add_argument(
        "--out",
        type=Path,
        metavar="DIR",
        help="the run folder (default: one under the data folder named after the set and the settings)",
    )
    run.add_argument("--repeat", type=int, default=1, metavar="N", help="answer each prompt N times (other seeds)")
    run.add_argument(
        "--concurrency",
        type=int,
        default=1,
        metavar="N",
        help="requests at once to a model (or judge) on a server (default 1)",
    )
    run.add_argument("--skip-bad", action="store_true", help="run without the lines of PROMPTS that are not prompts")
    load_options(batch)  # ask's own loading options, for every --model (and the judge)
    param_options(batch)
    judging = batch.add_argument_group("batch judge DIR (the decoding options above then go to the judge)")
    judging.add_argument("--judge", metavar="M", help="the judge model, local or SERVER/MODEL")
    judging.add_argument(
        "--baseline", metavar="M", help="the model every other one is compared with (default: the run's first)"
    )
    judging.add_argument(
        "--judge-prompt",
        type=Path,
        metavar="FILE",
        help='the judge\'s prompt instead of the built-in Chinese one: JSON {"system", "template"} or a text file '
        "(the template); the template holds {answer_a} and {answer_b}, and may hold {question} and {reference}",
    )
    judging.add_argument(
        "--to-votes",
        action="store_true",
        help="also store each verdict as an arena vote voted by the judge (left out of `zhbench leaderboard` "
        "unless --include-judge)",
    )
    report = batch.add_argument_group("batch report DIR")
    report.add_argument(
        "--format",
        choices=tuple(REPORT_FORMATS),
        help=f"{formats_help(REPORT_FORMATS)} (default: from -o's suffix, else md)",
    )
    output_option(report)
    batch.set_defaults(handler=cmd_batch)


def cmd_batch(args: argparse.Namespace) -> int:
    if args.list_builtin:
        return cmd_list_builtin(args)
    # "report" and "judge" are words, unless a prompts file of that name is meant
    action = args.prompts if args.prompts in ("report", "judge") else None
    if action is not None and (args.run_dir is not None or not Path(action).exists()):
        if args.run_dir is None:
            raise CommandError(f"batch {action} takes the run folder: zhbench batch {action} DIR")
        return cmd_report(args) if action == "report" else cmd_judge(args)
    if args.run_dir is not None:
        raise CommandError(f"batch takes one PROMPTS file, got {args.prompts} and {args.run_dir}")
    if args.format is not None or args.output is not None:
        raise CommandError("--format and -o go with `zhbench batch report DIR`")
    judging = ("--judge", args.judge), ("--baseline", args.baseline), ("--judge-prompt", args.judge_prompt)
    given = [name for name, value in (*judging, ("--to-votes", args.to_votes or None)) if value is not None]
    if given:
        raise CommandError(f"{given[0]} goes with `zhbench batch judge DIR` (judge a run once it has answers)")
    return cmd_run(args)


def cmd_run(args: argparse.Namespace) -> int:
    from zhbench.workbench.session.batch.runner import run_batch
    from zhbench.workbench.session.batch.store import BatchStore

    models = _models(args.model)
    if args.repeat < 1 or args.concurrency < 1:
        raise CommandError("--repeat and --concurrency take 1 or more")
    prompt_set = _prompt_set(args)
    options = _decoding_options(args)
    folder = args.out or _default_folder(prompt_set, options, args.repeat)
    with BatchStore(folder, _settings(args, prompt_set, models, options)) as store:
        print(f"zhbench batch: {folder}", file=sys.stderr)
        outcome = _shown_run(args, "answered", partial(run_batch, store, models))
        if outcome is None:
            return EXIT_INTERRUPTED
    failures = sum(state.failed for state in outcome) + sum(1 for state in outcome if state.problem)
    print(str(folder))
    print(f"report: zhbench batch report {folder} --format html -o report.html", file=sys.stderr)
    return EXIT_ERROR if failures else 0


def _shown_run(args: argparse.Namespace, what: str, work: Callable[..., Done]) -> Done | None:
    """``work(load=, settings_for=, progress=, concurrency=)`` with the models the options name, their
    settings and a progress display; None when Ctrl+C stopped it (what was ``what`` is kept, and said)."""
    listener = _RichProgress() if sys.stderr.isatty() else _PlainProgress()
    try:
        with listener:
            return work(
                load=lambda model: load(args, model),
                settings_for=lambda engine: params(engine, args),
                progress=listener,
                concurrency=args.concurrency,
            )
    except KeyboardInterrupt:
        print(f"stopped: what was {what} is kept; run the same command again to continue", file=sys.stderr)
        return None


def _decoding_options(args: argparse.Namespace) -> dict[str, Any]:
    """The decoding options as given (every one ``param_options`` defines), recorded with the run: a rerun
    with other ones is another run."""
    probe = argparse.ArgumentParser(add_help=False)
    param_options(probe)
    return {name: getattr(args, name) for name in vars(probe.parse_args([]))}


def _models(given: Sequence[str]) -> list[str]:
    if not given:
        raise CommandError("give the models to run, each with --model (two or more to compare)")
    repeated = sorted({model for model in given if given.count(model) > 1})
    if repeated:
        raise CommandError(f"--model {repeated[0]} is given twice")
    return list(given)


def _prompt_set(args: argparse.Namespace) -> PromptSet:
    """The set to run, every line that is not a prompt reported; refused over them unless ``--skip-bad``."""
    from zhbench.workbench.session.batch.prompts import builtin_set, read_prompt_set

    if (args.prompts is None) == (args.builtin is None):
        raise CommandError("give PROMPTS or --builtin NAME (one of them)")
    whole = builtin_set(args.builtin) if args.builtin else read_prompt_set(Path(args.prompts))
    ids = [item_id.strip() for given in args.ids for item_id in given.split(",") if item_id.strip()]
    prompt_set = whole.subset(ids=ids, categories=args.category, limit=args.limit)
    for bad in prompt_set.bad_lines:
        print(f"zhbench: {visible_text(prompt_set.source)}: {visible_text(str(bad))}", file=sys.stderr)
    if prompt_set.bad_lines and not args.skip_bad:
        count = len(prompt_set.bad_lines)
        raise CommandError(
            f"{count} bad line{'s' if count > 1 else ''} in {prompt_set.source}: fix them, or pass --skip-bad to "
            f"run the {len(prompt_set.items)} good ones"
        )
    if not prompt_set.items:
        raise CommandError(f"{prompt_set.source}: no good prompts in it")
    return prompt_set


def cmd_list_builtin(args: argparse.Namespace) -> int:
    """The built-in sets, each with its items' count and its categories."""
    from zhbench.workbench.session.batch.prompts import BUILTIN_SETS, builtin_set

    if args.prompts is not None or args.builtin or args.model:
        raise CommandError("--list-builtin takes nothing else")
    lines = []
    for name in BUILTIN_SETS:
        prompt_set = builtin_set(name)
        lines.append(f"{name}: {len(prompt_set.items)} items")
        lines.extend(f"  {count:>3}  {category}" for category, count in prompt_set.categories().items())
    lines.append("run one category: zhbench batch --builtin NAME --category C --model M ...")
    write_output(None, "\n".join(lines) + "\n")
    return 0


def _default_folder(prompt_set: PromptSet, options: dict[str, Any], repeat: int) -> Path:
    """``batches/NAME-DIGEST`` in the data folder: the same set and settings always name the same folder, so
    the same command continues its run; the models are left out, so adding one extends that run."""
    from zhbench.workbench.session.config import data_dir

    identity = json.dumps([prompt_set.fingerprint(), options, repeat], sort_keys=True, ensure_ascii=False)
    digest = hashlib.sha256(identity.encode("utf-8")).hexdigest()[:10]
    return data_dir() / "batches" / f"{prompt_set.name}-{digest}"


def _settings(
    args: argparse.Namespace, prompt_set: PromptSet, models: list[str], options: dict[str, Any]
) -> RunSettings:
    import secrets

    from zhbench.workbench.session.batch.store import RunSettings
    from zhbench.workbench.session.transcripts import now_iso

    return RunSettings(
        source=prompt_set.source,
        items=prompt_set.items,
        models=tuple(models),
        options=options,
        repeat=args.repeat,
        # without --seed, one drawn now and recorded: a continued run keeps the recorded one
        seed=args.seed if args.seed is not None else secrets.randbits(31),
        created=now_iso(),
    )


def cmd_report(args: argparse.Namespace) -> int:
    from zhbench.workbench.session.batch.report import build_report, render

    if args.model or args.builtin or args.judge:
        raise CommandError("batch report takes a run folder only (no --model, --builtin or --judge)")
    form = args.format or _format_of(args.output)
    write_output(args.output, render(build_report(args.run_dir), form))
    return 0


def cmd_judge(args: argparse.Namespace) -> int:
    from zhbench.workbench.session.batch.judge import (
        BUILTIN_PROMPT,
        JudgeStore,
        judge_settings,
        read_judge_prompt,
        run_judge,
    )
    from zhbench.workbench.session.batch.store import read_run

    if args.judge is None:
        raise CommandError("batch judge takes the judge model: zhbench batch judge DIR --judge M")
    if args.model or args.builtin or args.format is not None or args.output is not None:
        raise CommandError("batch judge takes a run folder and --judge (no --model, --builtin, --format or -o)")
    if args.system is not None:
        raise CommandError("the judge's system message is its prompt's: give it in --judge-prompt FILE (JSON)")
    if args.concurrency < 1:
        raise CommandError("--concurrency takes 1 or more")
    run = read_run(args.run_dir)
    baseline = args.baseline or run.settings.models[0]
    if baseline not in run.settings.models:
        raise CommandError(f"--baseline {baseline}: not a model of this run ({', '.join(run.settings.models)})")
    prompt = read_judge_prompt(args.judge_prompt) if args.judge_prompt else BUILTIN_PROMPT
    setup = judge_settings(args.judge, prompt, _decoding_options(args))
    with JudgeStore(args.run_dir, setup) as store:
        print(f"zhbench batch judge: {store.path}", file=sys.stderr)
        state = _shown_run(args, "judged", partial(run_judge, store, run, baseline))
        if state is None:
            return EXIT_INTERRUPTED
        path = store.path
    _print_judge_results(path, args.run_dir, to_votes=args.to_votes)
    print(str(args.run_dir))
    return EXIT_ERROR if state.problem or state.failed else 0


def _print_judge_results(path: Path, folder: Path, *, to_votes: bool) -> None:
    """Each model's win rate against the baseline on stderr, and the verdicts into the vote store if asked."""
    from zhbench.workbench.session.arena.votes import VoteStore
    from zhbench.workbench.session.batch.judge import read_judge_file
    from zhbench.workbench.session.batch.judge_results import judge_battles, pair_results, record_votes
    from zhbench.workbench.session.batch.store import read_run

    log = read_judge_file(path)
    for result in pair_results(log):
        if result.win_rate is None or result.ci_low is None or result.ci_high is None:
            rate = "no verdicts"
        else:
            rate = f"win rate {result.win_rate:.1%} (95% {result.ci_low:.1%}–{result.ci_high:.1%})"
        consistency = "–" if result.consistency is None else f"{result.consistency:.0%}"
        line = (
            f"{result.model} vs {result.baseline}: {rate}, {result.wins}/{result.ties}/{result.losses} W/T/L, "
            f"consistent across the swap {consistency}, {result.unparseable} unparseable"
        )
        print(visible_text(line), file=sys.stderr)
    if to_votes:
        with VoteStore.open() as votes:
            added = record_votes(votes, judge_battles(log, read_run(folder)))
        print(f"{added} new judge votes in {votes.path} (zhbench leaderboard --include-judge)", file=sys.stderr)


def _format_of(output: Path | None) -> str:
    return format_of_suffix(REPORT_FORMATS, output.suffix if output else "", "md")


# --- progress -----------------------------------------------------------------------------------


def _eta(state: ModelProgress) -> str:
    seconds = state.eta_s()
    if seconds is None:
        return "ETA –"
    return f"ETA {time.strftime('%H:%M:%S', time.gmtime(seconds))}"


class _PlainProgress:
    """Progress as plain lines on stderr (a log file, a pipe, CI): one every few seconds per model."""

    #: the least time between two lines of one model, so a fast model does not flood a log
    INTERVAL_S = 2.0

    def __init__(self) -> None:
        self._last_line = 0.0

    def __enter__(self) -> _PlainProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def started(self, state: ModelProgress) -> None:
        left = state.total - state.done
        doing = f"loading, {left} to answer" if left else "nothing left to answer"
        self._line(state, f"{state.done}/{state.total} answered already; {doing}")

    def advanced(self, state: ModelProgress) -> None:
        now = time.monotonic()
        if now - self._last_line >= self.INTERVAL_S or state.finished == state.total:
            self._last_line = now
            self._line(state, _figures(state))

    def finished(self, state: ModelProgress) -> None:
        if state.problem:
            self._line(state, f"could not run: {state.problem}")
        else:
            self._line(state, f"finished: {state.done}/{state.total} answered, {state.failed} failed")

    @staticmethod
    def _line(state: ModelProgress, text: str) -> None:
        print(visible_text(f"[{state.model}] {text}"), file=sys.stderr, flush=True)


def _figures(state: ModelProgress) -> str:
    failed = f" · {state.failed} failed" if state.failed else ""
    return f"{state.finished}/{state.total}{failed} · {state.tokens_per_s():.1f} tok/s · {_eta(state)}"


def _short_name(model: str) -> str:
    """A model as its bar names it: a folder by its name, so the bar, its count and its figures fit a line."""
    path = Path(model).expanduser()
    return path.name if path.exists() else model


class _RichProgress:
    """A Rich progress bar per model on the terminal: items done, tokens/s, ETA."""

    def __init__(self) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

        self._bars = Progress(
            TextColumn("{task.description}", markup=False),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[figures]}", markup=False),
            console=Console(stderr=True),
        )
        self._tasks: dict[str, TaskID] = {}

    def __enter__(self) -> _RichProgress:
        self._bars.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._bars.stop()

    def started(self, state: ModelProgress) -> None:
        figures = "loading" if state.done < state.total else "nothing left to answer"
        self._tasks[state.model] = self._bars.add_task(
            visible_text(_short_name(state.model)), total=state.total, completed=state.done, figures=figures
        )

    def advanced(self, state: ModelProgress) -> None:
        self._bars.update(self._tasks[state.model], completed=state.finished, figures=_figures(state))

    def finished(self, state: ModelProgress) -> None:
        if state.problem:
            self._bars.update(self._tasks[state.model], figures="could not run (below)")
            self._bars.console.print(visible_text(f"{state.model}: could not run: {state.problem}"), markup=False)
        else:
            failed = f", {state.failed} failed" if state.failed else ""
            self._bars.update(self._tasks[state.model], figures=f"done{failed}")
