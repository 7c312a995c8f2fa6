"""The leaderboard as plain text: a row per model with its 95% interval drawn as a bar, and the win-rate
matrix with each cell shaded by its value. Shared by ``zhbench leaderboard`` and the app's leaderboard
screen, so both show the same numbers the same way."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from zhbench.plain.safe_text import json_text, visible_text

if TYPE_CHECKING:
    from zhbench.workbench.session.arena.leaderboard import Leaderboard, ModelRating, Selection, StyleEffect

#: columns of the interval bar in the plain table
BAR_WIDTH = 30
#: a win rate's shade, from 0 (left) to 1 (right), five steps
SHADES = " ░▒▓█"
#: the mark of a model with no finite rating, in the table and before the sentence that says why
UNBOUNDED_MARK = "†"
#: what the empty leaderboard says
HOW_TO_VOTE = (
    'no votes yet: vote in the blind arena (`zhbench arena`, or "Arena: blind battle" in the app\'s palette), '
    "or rank a FastChat file with --battles FILE"
)


def leaderboard_text(board: Leaderboard, selection: Selection, skipped: dict[str, int], source: str) -> str:
    """The plain table: one row per model, its 95% interval drawn as a bar on a scale shared by all rows."""
    lines = [_summary(board, selection, skipped, source)]
    if not board.models:
        if not board.battles:
            lines.append(HOW_TO_VOTE)
        return "\n".join(lines) + "\n"
    rated = [row for row in board.models if row.bounded]
    low = min((row.ci_low for row in rated if row.ci_low is not None), default=0.0)
    high = max((row.ci_high for row in rated if row.ci_high is not None), default=0.0)
    names = [visible_text(row.model) for row in board.models]
    width = max(5, *(len(name) for name in names))
    lines.append(
        f"{'rank':>4}  {'model':<{width}}  {'rating':>7}  {'95% interval':>13}  {'battles':>7}  "
        f"{'W/T/L':<13}  {low:.0f} … {high:.0f}"
    )
    for row, name in zip(board.models, names, strict=True):
        record = f"{row.wins}/{row.ties}/{row.losses}"
        if row.rating is None or row.ci_low is None or row.ci_high is None:
            figures = f"{UNBOUNDED_MARK + ' ' + row.unbounded if row.unbounded else '':>7}  {'–':^13}"
            bar = ""
        else:
            figures = f"{row.rating:>7.1f}  {row.ci_low:>6.0f}–{row.ci_high:<6.0f}"
            bar = interval_bar(row.ci_low, row.ci_high, row.rating, low, high, BAR_WIDTH)
        lines.append(f"{row.rank:>4}  {name:<{width}}  {figures}  {row.battles:>7}  {record:<13}  {bar}".rstrip())
    lines.extend(notes(board))
    if board.style is not None:
        unit = {"mixed": "tokens in some battles, characters in others"}.get(board.length_unit or "", board.length_unit)
        lines.append(
            f"style held equal (length in {unit}); Elo points per standard deviation of the normalised difference:"
        )
        lines.extend(_style_line(effect) for effect in board.style)
    return "\n".join(lines) + "\n"


def notes(board: Leaderboard) -> list[str]:
    """The sentences under the table: models with no finite rating, and too few battles to say much."""
    from zhbench.workbench.session.arena.leaderboard import UNBOUNDED_MEANING

    lines = []
    for kind, meaning in UNBOUNDED_MEANING.items():
        which = [visible_text(row.model) for row in board.models if row.unbounded == kind]
        if which:
            lines.append(
                f"{UNBOUNDED_MARK} {', '.join(which)} {meaning}: no finite rating (more battles will give "
                "one); the other ratings leave them out"
            )
    if board.too_few_battles:
        lines.append(f"too few battles for the intervals to say much: {board.too_few_battles}")
    return lines


def interval_bar(low: float, high: float, point: float, scale_low: float, scale_high: float, width: int) -> str:
    """``low``…``high`` as a run of ░ on a ``width``-column scale from ``scale_low`` to ``scale_high``,
    with █ where ``point`` is."""
    span = scale_high - scale_low

    def column(value: float) -> int:
        return 0 if span <= 0 else min(width - 1, max(0, round((value - scale_low) / span * (width - 1))))

    first, last, mark = column(low), column(high), column(point)
    cells = [" "] * width
    cells[first : last + 1] = "░" * (last - first + 1)
    cells[mark] = "█"
    return "".join(cells).rstrip()


def _summary(board: Leaderboard, selection: Selection, skipped: dict[str, int], source: str) -> str:
    """What was ranked, from where, and what was left out and why."""
    parts = [f"{board.battles} battles from {visible_text(source)}"]
    if board.battles:
        intervals = f"{board.rounds} bootstrap rounds, seed {board.seed}" if board.rounds else "no intervals"
        parts.append(f"{intervals}; {'anchor ' + visible_text(board.anchor) if board.anchor else 'mean'} = 1000")
    if selection.named:
        parts.append(f"{selection.named} cast knowing the models left out (--include-named)")
    if selection.leaked:
        parts.append(f"{selection.leaked} with a reply naming its maker left out (--include-leaked)")
    if selection.judged:
        parts.append(f"{selection.judged} voted by a judge model left out (--include-judge)")
    if skipped:
        reasons = ", ".join(f"{count} {visible_text(reason)}" for reason, count in sorted(skipped.items()))
        parts.append(f"skipped: {reasons}")
    return "; ".join(parts)


def _style_line(effect: StyleEffect) -> str:
    return f"  {effect.feature:<11} {effect.elo:+7.1f}  [{effect.ci_low:+.1f}, {effect.ci_high:+.1f}]"


def win_rate_text(board: Leaderboard, width: int = 6) -> str:
    """The win-rate matrix: row model's share of its battles against the column model (ties as half), each
    cell its value and a shade; ``·`` where the two never met. Models are numbered in rating order."""
    names = [row.model for row in board.models]
    if not names:
        return ""
    lines = [" " * 5 + "".join(f"{index + 1:>{width}}" for index in range(len(names)))]
    for index, name in enumerate(names):
        cells = []
        for other in names:
            rate = board.win_rates.get(name, {}).get(other)
            cell = "·" if rate is None else f"{rate:.2f}" + SHADES[min(len(SHADES) - 1, int(rate * len(SHADES)))]
            cells.append(f"{cell:>{width}}")
        lines.append(f"{index + 1:>3}  " + "".join(cells) + f"  {visible_text(name)}")
    return "\n".join(lines) + "\n"


# --- the formats ``zhbench leaderboard --format`` writes --------------------------------------------

#: the table's columns in csv and md, each with how a row gives it
COLUMNS: tuple[tuple[str, Callable[[ModelRating], object]], ...] = (
    ("rank", lambda row: row.rank),
    ("model", lambda row: row.model),
    ("rating", lambda row: _rounded(row.rating)),
    ("ci_low", lambda row: _rounded(row.ci_low)),
    ("ci_high", lambda row: _rounded(row.ci_high)),
    ("battles", lambda row: row.battles),
    ("wins", lambda row: row.wins),
    ("ties", lambda row: row.ties),
    ("losses", lambda row: row.losses),
    ("bounded", lambda row: "yes" if row.bounded else f"no ({row.unbounded})"),
)


def _rounded(value: float | None) -> str:
    return "" if value is None else f"{value:.1f}"


def board_json(board: Leaderboard, selection: Selection, skipped: dict[str, int], source: str) -> str:
    """Every number, as ``--json`` prints it."""
    data: dict[str, Any] = board.to_json() | {
        "left_out": {"named": selection.named, "leaked": selection.leaked, "judge": selection.judged},
        "skipped": skipped,
        "source": source,
    }
    if not board.battles:
        data["how_to_vote"] = HOW_TO_VOTE
    return json_text(data, indent=2) + "\n"


def board_csv(board: Leaderboard, selection: Selection, skipped: dict[str, int], source: str) -> str:
    """The table as CSV: a header line, then a row per model (text as given, for a spreadsheet)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(name for name, _ in COLUMNS)
    writer.writerows([value(row) for _, value in COLUMNS] for row in board.models)
    return out.getvalue()


def board_markdown(board: Leaderboard, selection: Selection, skipped: dict[str, int], source: str) -> str:
    """The table as a Markdown table, the summary and notes as lines around it (for papers and issues)."""
    lines = [_summary(board, selection, skipped, source), ""]
    if not board.models:
        return "\n".join([lines[0], "", HOW_TO_VOTE] if not board.battles else lines[:1]) + "\n"
    lines.append("| rank | model | rating | 95% interval | battles | W/T/L |")
    lines.append("|---:|---|---:|---|---:|---|")
    for row in board.models:
        if row.rating is None or row.ci_low is None or row.ci_high is None:
            rating, interval = f"{UNBOUNDED_MARK} {row.unbounded}", "–"
        else:
            rating, interval = f"{row.rating:.1f}", f"{row.ci_low:.0f} – {row.ci_high:.0f}"
        name = _markdown_cell(row.model)
        lines.append(
            f"| {row.rank} | {name} | {rating} | {interval} | {row.battles} | {row.wins}/{row.ties}/{row.losses} |"
        )
    extra = notes(board)
    return "\n".join([*lines, *(["", *extra] if extra else [])]) + "\n"


def _markdown_cell(text: str) -> str:
    """``text`` safe in a Markdown table cell: shown literally, pipes escaped."""
    return visible_text(text).replace("|", "\\|")


#: ``zhbench leaderboard --format``'s choices, each with its writer
BOARD_FORMATS: dict[str, Callable[[Leaderboard, Selection, dict[str, int], str], str]] = {
    "text": leaderboard_text,
    "csv": board_csv,
    "md": board_markdown,
    "json": board_json,
}
