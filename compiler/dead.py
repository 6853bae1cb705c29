"""Edges that compute nothing the cell outputs, because of `none` (zero) edges: warnings, not errors.

NAS-Bench-201's reading, the structural hash's (compiler/hashing.py says which states are zero): a
`none` edge reads nothing; a node whose edges are all `none` (or dead) is zero, and so is an op
that reads only zero; a node that reaches the output only through `none` edges is unused. The
compiled network still builds the weights of such edges, as the benchmark's does, so its parameter
count is the benchmark's.
"""

from __future__ import annotations

from nasc.compiler import ir
from nasc.compiler.hashing import ZERO, state_digests
from nasc.compiler.registry import OPS
from nasc.diagnostics import Diagnostic

HINT = "the network still computes it (with its weights), as the benchmark's does; the hash leaves it out"


def _zero(op: str) -> bool:
    return OPS[op].family == "zero"


def dead_edges(genotype: ir.Genotype) -> list[Diagnostic]:
    """A warning at every op that is not `none` and contributes nothing to its cell's output."""
    warnings = []
    for cell in genotype.cells:
        zero = {state for state, digest in state_digests(cell).items() if digest == ZERO}
        used = _used(cell, zero)
        for block in cell.blocks:
            for operand in block.operands:
                if _zero(operand.op):
                    continue
                if operand.input in zero:
                    why = f"`{operand.input}` is zero: each of its edges is `none` or reads zero"
                elif block.target not in used:
                    why = f"`{block.target}` reaches the output only through `none` edges"
                else:
                    continue
                call = f"{operand.op}({operand.input})"
                warnings.append(
                    Diagnostic(f"`{call}` is dead: {why}", operand.span, genotype.filename, HINT, "warning")
                )
    return warnings


def _used(cell: ir.Cell, zero: set[str]) -> set[str]:
    """The states the output reads through edges that are not zero."""
    blocks = {block.target: block for block in cell.blocks}
    used: set[str] = set()
    pending = [member for member in cell.output.members if member not in zero]
    while pending:
        state = pending.pop()
        if state in used:
            continue
        used.add(state)
        if state in blocks:
            pending += [o.input for o in blocks[state].operands if not _zero(o.op) and o.input not in zero]
    return used
