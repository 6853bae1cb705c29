"""The Space IR: a search space as the checker leaves it — frozen, free of Lark types, spans carried.

A space is written in the cell language (`space NAME : CONVENTION`): where a cell names one op,
input or combine, a space's node may list candidates. A node's edges are its operands; each edge
has candidate ops and candidate inputs. `keep K` says that a derived cell keeps the node's K
strongest edges (DARTS); without it every edge is kept and chooses its input and op (NASNet).
A cell output of `unused` is NASNet's rule: the concatenation of the states no node reads.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import field

from nasc.compiler import ir
from nasc.compiler.registry import COMBINES, OPS
from nasc.diagnostics import Span, span_field
from nasc.nodes import frozen_node

UNUSED = "unused"  # `return concat(unused)`: the states no node reads (the paper's rule)


def _distinct(values: tuple[str, ...], what: str) -> None:
    if not values:
        raise ValueError(f"{what}: no candidates")
    if len(set(values)) != len(values):
        raise ValueError(f"{what}: a candidate is listed twice")


@frozen_node
class Edge:
    """One operand of a node: an op among `ops` applied to a state among `inputs`."""

    ops: tuple[str, ...]
    inputs: tuple[str, ...]
    op_set: str | None = None  # the named set the ops were written as; None: listed or one
    span: Span | None = span_field()

    def __post_init__(self) -> None:
        _distinct(self.ops, "an edge's ops")
        _distinct(self.inputs, "an edge's inputs")
        for op in self.ops:
            if op not in OPS:
                raise ValueError(f"unknown op {op!r}")
        for state in self.inputs:
            ir._require_identifier(state)


@frozen_node
class Node:
    target: str
    combines: tuple[str, ...]
    edges: tuple[Edge, ...]
    keep: int | None = None  # a derived cell keeps this many of the edges; None: all of them
    combine_set: str | None = None
    comments: ir.Comments = ir.NO_COMMENTS
    span: Span | None = span_field()

    def __post_init__(self) -> None:
        ir._require_identifier(self.target)
        _distinct(self.combines, f"{self.target}'s combines")
        for combine in self.combines:
            if combine not in COMBINES:
                raise ValueError(f"unknown combine {combine!r}")
        if not self.edges:
            raise ValueError(f"{self.target} has no edge")
        if self.keep is not None and not 1 <= self.keep <= len(self.edges):
            raise ValueError(f"{self.target} keeps {self.keep} of {len(self.edges)} edges")

    @property
    def kept(self) -> int:
        """How many operands a derived block has."""
        return len(self.edges) if self.keep is None else self.keep


@frozen_node
class SpaceCell:
    kind: str
    inputs: tuple[str, ...]
    nodes: tuple[Node, ...]
    output: ir.Output  # members, or (UNUSED,)
    comments: ir.Comments = ir.NO_COMMENTS
    close_comments: ir.Comments = ir.NO_COMMENTS
    span: Span | None = span_field()

    def __post_init__(self) -> None:
        ir._require_identifier(self.kind)
        defined = list(self.inputs)
        if len(set(defined)) != len(defined):
            raise ValueError("a cell input is declared twice")
        for node in self.nodes:
            for edge in node.edges:
                for state in edge.inputs:
                    if state not in defined:
                        raise ValueError(f"{node.target} reads {state} before it is defined")
            if node.target in defined or node.target == UNUSED:
                raise ValueError(f"{node.target} cannot be defined here")
            defined.append(node.target)
        if not self.outputs_unused:
            for member in self.output.members:
                if member not in defined:
                    raise ValueError(f"output {member} is not defined")

    @property
    def outputs_unused(self) -> bool:
        return self.output.members == (UNUSED,)

    @property
    def states(self) -> tuple[str, ...]:
        """Every state in order: the inputs, then the nodes."""
        return self.inputs + tuple(node.target for node in self.nodes)


@frozen_node
class ChoiceSet:
    """`ops = [a, b]`: named candidates, which a node's op or combine may name."""

    name: str
    members: tuple[str, ...]
    comments: ir.Comments = ir.NO_COMMENTS
    span: Span | None = span_field()

    def __post_init__(self) -> None:
        ir._require_identifier(self.name)
        _distinct(self.members, f"set {self.name}")


@frozen_node
class Space:
    name: str
    convention: str
    sets: tuple[ChoiceSet, ...]
    cells: tuple[SpaceCell, ...]
    metadata: tuple[ir.MetaEntry, ...] = ()
    comments: ir.Comments = ir.NO_COMMENTS
    meta_comments: ir.Comments = ir.NO_COMMENTS
    meta_close_comments: ir.Comments = ir.NO_COMMENTS
    footer: tuple[str, ...] = ()
    filename: str | None = field(default=None, compare=False, repr=False)
    source: str | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        ir._require_identifier(self.name)
        ir._require_identifier(self.convention)
        kinds = [cell.kind for cell in self.cells]
        if len(set(kinds)) != len(kinds):
            raise ValueError("a cell kind appears twice")

    def cell(self, kind: str) -> SpaceCell:
        for cell in self.cells:
            if cell.kind == kind:
                return cell
        raise KeyError(kind)

    def meta(self, key: str, default: ir.MetaValue | None = None) -> ir.MetaValue | None:
        return next((entry.value for entry in self.metadata if entry.key == key), default)


def space_size(space: Space) -> int:
    """How many cells a space derives: per node, the ways to choose its kept edges and each kept
    edge's input and op (never `none` where edges are ranked) and a combine; the product over nodes
    and cells. Isomorphic cells count apart."""
    total = 1
    for cell in space.cells:
        for node in cell.nodes:
            ways = [
                len(e.inputs) * len([op for op in e.ops if node.keep is None or op != "none"])
                for e in node.edges
            ]
            total *= len(node.combines) * sum(
                math.prod(chosen) for chosen in itertools.combinations(ways, node.kept)
            )
    return total
