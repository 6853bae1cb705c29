"""NAS-Bench-201's architecture strings, read into and written from nb201 genotypes.

`|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|`:
nodes joined by `+`, each the ops on its edges between bars, `op~i` reading node i (0 is the cell's
input). xautodl's `Structure.str2structure` reads them; `tostr` writes them (edges in index order).
"""

from __future__ import annotations

import re

from nasc.compiler import ir
from nasc.compiler.conventions.nb201 import BENCHMARK_OPS, NB201
from nasc.compiler.hashing import structural_hash
from nasc.diagnostics import Diagnostic, NascError, Span, did_you_mean

NODES = NB201.blocks_per_cell
_EDGE = re.compile(r"([^~|+]*)~([0-9]+)\Z")
TO_BENCHMARK = {nasc_name: name for name, nasc_name in BENCHMARK_OPS.items()}


class _Reader:
    def __init__(self, text: str, filename: str) -> None:
        self.text, self.filename = text, filename

    def fail(self, message: str, start: int, end: int, hint: str | None = None) -> NascError:
        span = Span(1, start + 1, 1, max(end, start + 1) + 1)
        return NascError([Diagnostic(message, span, self.filename, hint)], self.text)


def _nodes(reader: _Reader) -> list[list[tuple[str, int, int, int]]]:
    """Each node's edges as (op, input, start, end) with their offsets in the text."""
    text, nodes, offset = reader.text, [], 0
    for part in text.split("+"):
        end = offset + len(part)
        if len(part) < 2 or not (part.startswith("|") and part.endswith("|")):
            raise reader.fail(
                f"node {len(nodes) + 1} is not written between bars",
                offset,
                end,
                "a node reads `|op~i|op~j|`, nodes joined by `+`",
            )
        edges, position = [], offset + 1
        for edge in part[1:-1].split("|"):
            match = _EDGE.match(edge)
            if not edge:
                raise reader.fail(
                    "an empty edge", position - 1, position + 1, "is a `+` missing between two nodes?"
                )
            if match is None:
                raise reader.fail(
                    f"`{edge}` is not an edge", position, position + len(edge), "an edge reads `op~i`"
                )
            edges.append((match[1], int(match[2]), position, position + len(edge)))
            position += len(edge) + 1
        nodes.append(edges)
        offset = end + 1
    return nodes


def _block(reader: _Reader, index: int, edges: list[tuple[str, int, int, int]]) -> ir.Block:
    seen: dict[int, str] = {}
    for op, source, start, end in edges:
        if op not in BENCHMARK_OPS:
            raise reader.fail(
                f"unknown op `{op}`",
                start,
                start + len(op),
                did_you_mean(op, BENCHMARK_OPS) or f"ops: {', '.join(BENCHMARK_OPS)}",
            )
        if source >= index or source in seen:
            raise reader.fail(
                f"node {index} cannot read node {source}"
                if source >= index
                else f"node {index} reads node {source} twice",
                start,
                end,
                f"node {index} has one edge from each of nodes 0 to {index - 1}",
            )
        seen[source] = BENCHMARK_OPS[op]
    if len(seen) != index:
        raise reader.fail(
            f"node {index} has {len(seen)} edge(s); it reads each of nodes 0 to {index - 1}",
            edges[0][2],
            edges[-1][3],
            "write `none~i` for an edge that is absent",
        )
    operands = tuple(ir.Operand(seen[source], f"h{source}") for source in range(index))
    return ir.Block(f"h{index}", "add", operands)


def read_nb201(text: str, filename: str = "<nb201>", name: str | None = None) -> ir.Genotype:
    """The nb201 genotype of an architecture string; NascError pointing into the string."""
    reader = _Reader(text.strip(), filename)
    nodes = _nodes(reader)
    if len(nodes) != NODES:
        raise reader.fail(
            f"{len(nodes)} node(s); NAS-Bench-201's cell has {NODES}",
            0,
            len(reader.text),
            "nodes are joined by `+`: `|a~0|+|b~0|c~1|+|d~0|e~1|f~2|`",
        )
    blocks = tuple(_block(reader, index, edges) for index, edges in enumerate(nodes, start=1))
    cell = ir.Cell("normal", ("h0",), blocks, ir.Output((blocks[-1].target,)))
    metadata = (ir.MetaEntry("nb201", reader.text),)
    genotype = ir.Genotype(name or "nb201", (cell,), metadata, convention=NB201.name)
    if name is None:  # named by what it computes: isomorphic strings get one name
        genotype = ir.Genotype(
            f"nb201_{structural_hash(genotype)[:8]}", (cell,), metadata, convention=NB201.name
        )
    return genotype


def write_nb201(genotype: ir.Genotype) -> str:
    """The architecture string of an nb201 genotype (FormatError for another convention)."""
    from nasc.compiler.nasnet_format import FormatError

    if genotype.convention != NB201.name:
        raise FormatError(
            f"the nb201 format describes cells of the nb201 convention; this genotype is read by "
            f"`{genotype.convention}`"
        )
    cell = genotype.cell("normal")
    index = {name: position for position, name in enumerate((*cell.inputs, *(b.target for b in cell.blocks)))}
    nodes = [
        "|" + "|".join(f"{TO_BENCHMARK[o.op]}~{index[o.input]}" for o in block.operands) + "|"
        for block in cell.blocks
    ]
    return "+".join(nodes)
