"""Straight-line forward code: each value freed after its last reader, each ReLU computed once.

A network's forward is a list of assignments the compiler knows completely; a tensor nothing reads
any more is deleted at once (`del x_cell_3, relu_x_cell_2`), so peak memory in inference is what a
loop that drops its references would give, and no reference outlives its use in training. Where
several ops read one state through ReLU, they share one `relu(h)`: computed, and in training kept
for the backward pass, once instead of once per op.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from nasc.compiler.namespace import Namespace


class SharedRelu:
    """The one `relu(state)` of a scope (a cell's forward): the first reader names it, the rest reuse
    the name. `given` holds activations the scope already has (a parameter that arrives activated)."""

    def __init__(self, names: Namespace, given: Mapping[str, str] | None = None) -> None:
        self._names = names
        self._activated = dict(given or {})

    def of(self, state: str, local: str, new: list[tuple[str, str]]) -> str:
        """The local holding relu(state) (whose own local is `local`); appends (name, local) to
        `new` when this is the first reader, so the caller emits `name = torch.relu(local)` there."""
        if state not in self._activated:
            self._activated[state] = self._names.name(("relu", state), f"relu_{local}")
            new.append((self._activated[state], local))
        return self._activated[state]


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
