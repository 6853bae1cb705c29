"""Conventions: how a genotype's cells are read as a network.

A convention names the cell kinds it builds networks from and how many inputs each takes. The
NASNet/TF-slim convention (docs/reference.md) is the default and the one that must be exact; its
lowering rules live in compiler/lower.py.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Convention:
    name: str
    cell_kinds: tuple[str, ...]  # every kind is required
    cell_inputs: int  # inputs each cell declares: (x1 = cell below, x2 = two cells below)
    cell_strides: tuple[tuple[str, int], ...] = ()  # stride of each kind's ops on the cell inputs

    def stride(self, kind: str) -> int:
        return dict(self.cell_strides).get(kind, 1)

    def describe_kinds(self) -> str:
        quoted = [f"`{kind}`" for kind in self.cell_kinds]
        return " and ".join(quoted) if len(quoted) <= 2 else ", ".join(quoted[:-1]) + " and " + quoted[-1]


NASNET = Convention(
    name="nasnet",
    cell_kinds=("normal", "reduction"),
    cell_inputs=2,
    cell_strides=(("normal", 1), ("reduction", 2)),
)
