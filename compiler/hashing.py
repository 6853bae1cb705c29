"""Structural identity of genotypes.

Two genotypes get the same hash exactly when they describe the same architecture. The hash ignores:
  - the genotype's name, its metadata, comments, whitespace and layout;
  - the names of states (cell inputs are identified by position: first = x1, second = x2);
  - the order of blocks, except as data dependence requires (a block is identified by what it computes);
  - operand order inside commutative combines (all four: add, concat, add_layernorm, add_instancenorm;
    for concat the operand order only permutes channels, which every consumer absorbs);
  - the order of the states listed in a cell's output (again a channel permutation);
  - the order of the cells in the file.
Zero (`none`, NAS-Bench-201's) is read as absence: an edge that is `none` reads nothing, a block
with no live operand is zero, and so is every op that reads only zero; an `add` of one live operand
is that operand. Where a convention's identity is always the state itself (nb201), `identity(x)`
is `x`, and an add that reads a sum that way adds its terms. So NAS-Bench-201's isomorphic
architectures hash alike.
It changes when any op, combine, wiring (which state an op reads), output membership, cell kind,
number of cell inputs or the network convention changes (the default `nasnet` convention adds
nothing to the encoding, so NASNet hashes are those of files that name no convention). The hash is
SHA-256 over a versioned canonical encoding (hex, 64 chars).
"""

from __future__ import annotations

import functools
import hashlib

from nasc.compiler import ir
from nasc.compiler.conventions import CONVENTIONS
from nasc.compiler.printer import DEFAULT_CONVENTION
from nasc.compiler.registry import COMBINES, OPS

HASH_VERSION = "nasc-structural-v1"


def _digest(*parts: object) -> str:
    return hashlib.sha256(repr(parts).encode()).hexdigest()


# An op applied to a cell input has one of a few hundred digests, and most genotypes apply several:
# remembered, as the input digests are (bounded: a digest is a pure function of its parts).
_input_digest = functools.lru_cache(maxsize=64)(lambda position: _digest("input", position))
_op_digest = functools.lru_cache(maxsize=4096)(lambda op, state: _digest("op", op, state))


ZERO = _digest("zero")


def _terms(
    operand: ir.Operand, state: str, sums: dict[str, tuple[str, ...]], identity_is_state: bool
) -> tuple[str, ...]:
    """An operand's contribution to its block: no term where it is zero, a sum's terms where it is
    an identity of a sum (addition is associative), else one digest."""
    if state == ZERO or OPS[operand.op].family == "zero":
        return ()
    if identity_is_state and operand.op == "identity":
        return sums.get(state, (state,))
    return (_op_digest(operand.op, state),)


def state_digests(cell: ir.Cell, identity_is_state: bool = False) -> dict[str, str]:
    """Each state's digest: what it computes, whatever it and the states it reads are called."""
    states = {name: _input_digest(position) for position, name in enumerate(cell.inputs)}
    sums: dict[str, tuple[str, ...]] = {}  # the terms of each state that is an add of several
    for block in cell.blocks:
        operands = [
            term
            for operand in block.operands
            for term in _terms(operand, states[operand.input], sums, identity_is_state)
        ]
        if not operands:
            states[block.target] = ZERO
            continue
        if COMBINES[block.combine].commutative:
            operands.sort()
        if block.combine == "add" and len(operands) == 1:
            states[block.target] = operands[0]
            continue
        states[block.target] = _digest("block", block.combine, *operands)
        if block.combine == "add":
            sums[states[block.target]] = tuple(operands)
    return states


def cell_digest(cell: ir.Cell, identity_is_state: bool = False) -> str:
    states = state_digests(cell, identity_is_state)
    members = sorted(states[member] for member in cell.output.members)
    return _digest("cell", cell.kind, len(cell.inputs), cell.output.combine, *members)


def structural_hash(genotype: ir.Genotype) -> str:
    convention = CONVENTIONS.get(genotype.convention)
    identity_is_state = convention is not None and convention.identity_is_state
    cells = sorted(cell_digest(cell, identity_is_state) for cell in genotype.cells)
    if genotype.convention == DEFAULT_CONVENTION:  # NASNet hashes stay what they have always been
        return _digest(HASH_VERSION, *cells)
    return _digest(HASH_VERSION, "convention", genotype.convention, *cells)


SPACE_HASH_VERSION = "nasc-space-v1"


def space_hash(space) -> str:
    """A search space's identity (compiler/space_ir.Space): its convention and, per cell kind, each
    node's candidate combines, and per edge its candidate ops (in order: the order of a supernet's
    architecture weights) and inputs (by position), what it keeps and what the cell outputs. Names,
    sets, comments, metadata and layout do not count."""
    cells = []
    for cell in sorted(space.cells, key=lambda c: c.kind):
        position = {state: index for index, state in enumerate(cell.states)}
        nodes = tuple(
            (
                node.combines,
                tuple((edge.ops, tuple(position[s] for s in edge.inputs)) for edge in node.edges),
                node.keep,
            )
            for node in cell.nodes
        )
        output = "unused" if cell.outputs_unused else tuple(sorted(position[m] for m in cell.output.members))
        cells.append((cell.kind, len(cell.inputs), nodes, output))
    return _digest(SPACE_HASH_VERSION, space.convention, *cells)
