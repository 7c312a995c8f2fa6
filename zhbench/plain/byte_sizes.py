"""Byte counts as people read them: the one formatter for the meter, the model list and the command line."""

from __future__ import annotations

#: memory and files in binary units, as GPU tools show them
_BINARY = (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10))
#: the compact form, in decimal units as disks are sold
_DECIMAL = (("T", 10**12), ("G", 10**9), ("M", 10**6), ("K", 10**3))


def format_bytes(count: int | None, *, compact: bool = False) -> str:
    """``1.5 GiB``; or with ``compact`` at most five characters (``340M``, ``1.6G``, ``28G``). Unknown: ``?``/``—``."""
    if count is None:
        return "—" if compact else "?"
    for unit, size in _DECIMAL if compact else _BINARY:
        if count >= size:
            value = count / size
            if not compact:
                return f"{value:.1f} {unit}"
            return f"{value:.1f}{unit}" if value < 10 else f"{value:.0f}{unit}"
    return f"{count}B" if compact else f"{count} B"
