"""Straight-line forward code with its values freed after their last reader.

A network's forward is a list of assignments the compiler knows completely; a tensor nothing reads
any more is deleted at once (`del x_cell_3, relu_x_cell_2`), so peak memory in inference is what a
loop that drops its references would give, and no reference outlives its use in training.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Line:
    code: str  # `target = expression`
    release: str = ""  # names no later line reads, deleted after this one ("" when none)


def straight_line(lines: Iterable[tuple[str, tuple[str, ...]]], keep: Iterable[str]) -> list[Line]:
    """`lines` as (code, names it reads), each followed by the release of the names it reads last,
    but those in `keep` (what the function returns). The last line's die with the return."""
    lines = list(lines)
    kept = set(keep)
    last_read: dict[str, int] = {}
    for index, (_, reads) in enumerate(lines):
        for name in reads:
            last_read[name] = index
    released: dict[int, list[str]] = {}
    for name, index in last_read.items():
        if name not in kept and index < len(lines) - 1:
            released.setdefault(index, []).append(name)
    return [Line(code, ", ".join(released.get(index, ()))) for index, (code, _) in enumerate(lines)]
