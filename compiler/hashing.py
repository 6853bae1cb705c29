"""Structural identity of genotypes.

Two genotypes get the same hash exactly when they describe the same architecture. The hash ignores:
  - the genotype's name, its metadata, comments, whitespace and layout;
  - the names of states (cell inputs are identified by position: first = x1, second = x2);
  - the order of blocks, except as data dependence requires (a block is identified by what it computes);
  - operand order inside commutative combines (all four: add, concat, add_layernorm, add_instancenorm;
    for concat the operand order only permutes channels, which every consumer absorbs);
  - the order of the states listed in a cell's output (again a channel permutation);
  - the order of the cells in the file.
It changes when any op, combine, wiring (which state an op reads), output membership, cell kind,
number of cell inputs or the network convention changes (the default `nasnet` convention adds
nothing to the encoding, so NASNet hashes are those of files that name no convention). The hash is
SHA-256 over a versioned canonical encoding (hex, 64 chars).
"""

from __future__ import annotations

import functools
import hashlib

from nasc.compiler import ir
from nasc.compiler.printer import DEFAULT_CONVENTION
from nasc.compiler.registry import COMBINES

HASH_VERSION = "nasc-structural-v1"


def _digest(*parts: object) -> str:
    return hashlib.sha256(repr(parts).encode()).hexdigest()


# An op applied to a cell input has one of a few hundred digests, and most genotypes apply several:
# remembered, as the input digests are (bounded: a digest is a pure function of its parts).
_input_digest = functools.lru_cache(maxsize=64)(lambda position: _digest("input", position))
_op_digest = functools.lru_cache(maxsize=4096)(lambda op, state: _digest("op", op, state))


def state_digests(cell: ir.Cell) -> dict[str, str]:
    """Each state's digest: what it computes, whatever it and the states it reads are called."""
    states = {name: _input_digest(position) for position, name in enumerate(cell.inputs)}
    for block in cell.blocks:
        operands = [_op_digest(operand.op, states[operand.input]) for operand in block.operands]
        if COMBINES[block.combine].commutative:
            operands.sort()
        states[block.target] = _digest("block", block.combine, *operands)
    return states


def cell_digest(cell: ir.Cell) -> str:
    states = state_digests(cell)
    members = sorted(states[member] for member in cell.output.members)
    return _digest("cell", cell.kind, len(cell.inputs), cell.output.combine, *members)


def structural_hash(genotype: ir.Genotype) -> str:
    cells = sorted(cell_digest(cell) for cell in genotype.cells)
    if genotype.convention == DEFAULT_CONVENTION:  # NASNet hashes stay what they have always been
        return _digest(HASH_VERSION, *cells)
    return _digest(HASH_VERSION, "convention", genotype.convention, *cells)
