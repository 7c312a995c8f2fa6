"""Byte counts as people read them: the one formatter for the model list, the meter, the command line and the
memory-fit lines, so a file's size reads the same wherever it is shown."""

from __future__ import annotations

#: binary units, as GPU tools (nvidia-smi) and memory readings count
_UNITS = ("B", "KiB", "MiB", "GiB", "TiB", "PiB")
#: the most characters ``format_bytes`` returns for a known count (``"999 KiB"``, ``"1.5 GiB"``): the
#: model list's narrow columns are this wide
WIDTH = 7


def format_bytes(count: int | None, *, unknown: str = "?") -> str:
    """``1.5 GiB``, ``28 GiB``, ``316 KiB``, ``1002 B``: two or three figures in binary units (a count under
    1 KiB exactly), at most ``WIDTH`` characters; ``unknown`` when there is no count."""
    if count is None:
        return unknown
    if count < 1024:
        return f"{count} B"
    value, unit = count / 1024, 1
    while unit < len(_UNITS) - 1 and round(value) >= 1000:  # 1000-1023 of a unit read as 1.0 of the next
        value, unit = value / 1024, unit + 1
    shown = f"{value:.1f}" if value < 9.95 else f"{value:.0f}"
    return f"{shown} {_UNITS[unit]}"
