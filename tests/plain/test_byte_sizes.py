"""One form for a byte count wherever zhbench shows one: binary units, two or three figures, narrow enough for
the model list's columns."""

from __future__ import annotations

import pytest

from zhbench.plain.byte_sizes import WIDTH, format_bytes


@pytest.mark.parametrize(
    ("count", "shown"),
    [
        (1002, "1002 B"),
        (316 * 1024 + 400, "316 KiB"),
        (1023 * 1024, "1.0 MiB"),  # 1000 or more of a unit is the next unit
        (2_953_650, "2.8 MiB"),
        (4 * 10**9, "3.7 GiB"),
        (28 * 2**30, "28 GiB"),
        (None, "?"),
    ],
)
def test_a_count_reads_in_binary_units(count: int | None, shown: str) -> None:
    assert format_bytes(count) == shown


def test_every_count_fits_the_model_lists_columns() -> None:
    counts = {round(1.01**power) for power in range(3500)}  # 1 B to past 1 PiB, every step under 1% apart
    assert max(len(format_bytes(count)) for count in counts) == WIDTH
