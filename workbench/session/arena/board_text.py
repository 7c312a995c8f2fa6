"""The leaderboard as plain text: a row per model with its 95% interval drawn as a bar, and the win-rate
matrix with each cell shaded by its value. Shared by ``zhbench leaderboard`` and the app's leaderboard
screen, so both show the same numbers the same way."""

from __future__ import annotations

from typing import TYPE_CHECKING

from zhbench.workbench.session.safe_text import visible_text

if TYPE_CHECKING:
    from zhbench.workbench.session.arena.leaderboard import Leaderboard, Selection, StyleEffect

#: columns of the interval bar in the plain table
BAR_WIDTH = 30
#: a win rate's shade, from 0 (left) to 1 (right), five steps
SHADES = " ░▒▓█"


def leaderboard_text(board: Leaderboard, selection: Selection, skipped: dict[str, int], source: str) -> str:
    """The plain table: one row per model, its 95% interval drawn as a bar on a scale shared by all rows."""
    lines = [_summary(board, selection, skipped, source)]
    if not board.models:
        return "\n".join(lines) + "\n"
    low = min(row.ci_low for row in board.models)
    high = max(row.ci_high for row in board.models)
    names = [visible_text(row.model) for row in board.models]
    width = max(5, *(len(name) for name in names))
    lines.append(
        f"{'rank':>4}  {'model':<{width}}  {'rating':>7}  {'95% interval':>13}  {'battles':>7}  "
        f"{'W/T/L':<13}  {low:.0f} … {high:.0f}"
    )
    for row, name in zip(board.models, names, strict=True):
        record = f"{row.wins}/{row.ties}/{row.losses}"
        lines.append(
            f"{row.rank:>4}  {name:<{width}}  {row.rating:>7.1f}  "
            f"{row.ci_low:>6.0f}–{row.ci_high:<6.0f}  {row.battles:>7}  {record:<13}  "
            + interval_bar(row.ci_low, row.ci_high, row.rating, low, high, BAR_WIDTH)
        )
    if board.style is not None:
        lines.append("style held equal; Elo points per standard deviation of the normalised difference:")
        lines.extend(_style_line(effect) for effect in board.style)
    return "\n".join(lines) + "\n"


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
