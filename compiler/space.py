"""Search spaces as data: the decisions that define a cell, and their decoding into Genotype IR.

A cell of B blocks is 5·B decisions in the paper's order (per block: input 1, input 2, op 1, op 2,
combine); block b may read the cell's two inputs or any earlier block, so its input choices number
2 + b. The cell outputs the concatenation of the block states no later block consumes (paper §3).
"""

from __future__ import annotations

import functools
import random
from dataclasses import dataclass

from nasc.compiler import ir
from nasc.compiler.hashing import space_hash
from nasc.compiler.registry import COMBINES, OPS, PAPER_OPS
from nasc.compiler.space_ir import UNUSED, Edge, Node, Space, SpaceCell
from nasc.diagnostics import Diagnostic, NascError

CELL_INPUTS = ("h0", "h1")


@dataclass(frozen=True)
class Decision:
    cell: str
    block: int
    role: str  # "input", "op" or "combine"
    choices: int


@dataclass(frozen=True)
class SearchSpace:
    name: str = "nasnet"
    num_blocks: int = 5
    ops: tuple[str, ...] = PAPER_OPS
    combines: tuple[str, ...] = ("add", "concat")
    cell_kinds: tuple[str, ...] = ("normal", "reduction")
    convention: str = "nasnet"

    def __post_init__(self) -> None:
        unknown = [o for o in self.ops if o not in OPS] + [c for c in self.combines if c not in COMBINES]
        if unknown:
            raise ValueError(f"unknown ops or combines in search space: {', '.join(unknown)}")
        if self.num_blocks < 1 or not self.ops or not self.combines:
            raise ValueError("a search space needs at least one block, one op and one combine")

    def decisions(self) -> tuple[Decision, ...]:
        """Every decision in sampling order: per cell, per block: input, input, op, op, combine."""
        out = []
        for kind in self.cell_kinds:
            for b in range(self.num_blocks):
                inputs = len(CELL_INPUTS) + b
                out += [
                    Decision(kind, b, "input", inputs),
                    Decision(kind, b, "input", inputs),
                    Decision(kind, b, "op", len(self.ops)),
                    Decision(kind, b, "op", len(self.ops)),
                    Decision(kind, b, "combine", len(self.combines)),
                ]
        return tuple(out)

    def to_space(self) -> Space:
        """The space file this describes (spaces/nasnet.space for the default)."""
        cells = []
        for kind in self.cell_kinds:
            states, nodes = list(CELL_INPUTS), []
            for _ in range(self.num_blocks):
                edge = Edge(self.ops, tuple(states))
                nodes.append(Node(f"h{len(states)}", self.combines, (edge, edge)))
                states.append(nodes[-1].target)
            cells.append(SpaceCell(kind, CELL_INPUTS, tuple(nodes), ir.Output((UNUSED,))))
        return Space(self.name, self.convention, (), tuple(cells))

    def space_hash(self) -> str:
        return _space_hash(self)

    def random_choices(self, rng: random.Random) -> list[int]:
        return [rng.randrange(d.choices) for d in self.decisions()]

    def decode(
        self,
        choices: list[int] | tuple[int, ...],
        name: str = "sampled",
        metadata: tuple[ir.MetaEntry, ...] = (),
    ) -> ir.Genotype:
        """Turn a full list of choices into a genotype (the IR checks the result)."""
        decisions = self.decisions()
        if len(choices) != len(decisions):
            raise ValueError(f"expected {len(decisions)} choices, got {len(choices)}")
        for choice, decision in zip(choices, decisions, strict=True):
            if not 0 <= choice < decision.choices:
                raise ValueError(f"choice {choice} out of range for {decision}")
        per_cell = 5 * self.num_blocks
        cells = []
        for k, kind in enumerate(self.cell_kinds):
            chunk = choices[k * per_cell : (k + 1) * per_cell]
            states = list(CELL_INPUTS)
            blocks, consumed = [], set()
            for b in range(self.num_blocks):
                in1, in2, op1, op2, combine = chunk[5 * b : 5 * b + 5]
                operands = (ir.Operand(self.ops[op1], states[in1]), ir.Operand(self.ops[op2], states[in2]))
                target = f"h{len(states)}"
                blocks.append(ir.Block(target, self.combines[combine], operands))
                consumed.update((states[in1], states[in2]))
                states.append(target)
            unused = tuple(s for s in states[len(CELL_INPUTS) :] if s not in consumed)
            cells.append(ir.Cell(kind, CELL_INPUTS, tuple(blocks), ir.Output(unused)))
        return ir.Genotype(name, tuple(cells), metadata, convention=self.convention)

    def encode(self, genotype: ir.Genotype) -> tuple[list[int], list[str]]:
        """The choices whose decoding has `genotype`'s blocks (its ops, the states they read, its
        combines), and what decoding them does not keep: a cell output other than the unused states,
        another network convention. ValueError where the blocks themselves do not fit the space."""
        choices: list[int] = []
        dropped: list[str] = []
        for kind in self.cell_kinds:
            try:
                cell = genotype.cell(kind)
            except KeyError:
                raise ValueError(f"it has no {kind} cell") from None
            if len(cell.blocks) != self.num_blocks:
                raise ValueError(
                    f"its {kind} cell has {len(cell.blocks)} blocks; the space has {self.num_blocks}"
                )
            if len(cell.inputs) != len(CELL_INPUTS):
                raise ValueError(f"its {kind} cell takes {len(cell.inputs)} inputs; the space's take 2")
            states = list(cell.inputs)
            for block in cell.blocks:
                for operand in block.operands:
                    if operand.op not in self.ops:
                        raise ValueError(f"{kind} {block.target}: `{operand.op}` is not an op of the space")
                if block.combine not in self.combines:
                    raise ValueError(
                        f"{kind} {block.target}: `{block.combine}` is not a combine of the space"
                    )
                first, second = block.operands
                choices += [states.index(first.input), states.index(second.input)]
                choices += [self.ops.index(first.op), self.ops.index(second.op)]
                choices.append(self.combines.index(block.combine))
                states.append(block.target)
        projected = self.decode(choices, genotype.name)
        if genotype.convention != projected.convention:
            dropped.append(f"read with the {projected.convention} convention, not {genotype.convention}")
        for kind in self.cell_kinds:
            given = {_position(genotype.cell(kind), member) for member in genotype.cell(kind).output.members}
            kept = {_position(projected.cell(kind), member) for member in projected.cell(kind).output.members}
            if given != kept:
                dropped.append(f"its {kind} cell outputs the unused states, not the ones it lists")
        return choices, dropped

    def sample(self, rng: random.Random, name: str = "sampled") -> ir.Genotype:
        return self.decode(self.random_choices(rng), name)

    def mutate(self, choices: list[int], rng: random.Random) -> tuple[list[int], str]:
        """Real et al.'s op or hidden-state mutation of one block's operand, and its description in
        the cell's own names."""
        child = list(choices)
        cell = rng.randrange(len(self.cell_kinds))
        block = rng.randrange(self.num_blocks)
        side = rng.randrange(2)
        at = 5 * (cell * self.num_blocks + block)
        kind, target = self.cell_kinds[cell], f"h{len(CELL_INPUTS) + block}"
        where = f"{kind} {target} {('left', 'right')[side]}"
        if len(self.ops) > 1 and rng.random() < 0.5:
            old = child[at + 2 + side]
            child[at + 2 + side] = rng.choice([i for i in range(len(self.ops)) if i != old])
            return child, f"op {where}: {self.ops[old]} -> {self.ops[child[at + 2 + side]]}"
        old = child[at + side]
        # Block b may read the cell's inputs and blocks 0..b-1: 2 + b states, at least two.
        child[at + side] = rng.choice([i for i in range(len(CELL_INPUTS) + block) if i != old])
        return child, f"hidden_state {where}: h{old} -> h{child[at + side]}"


NASNET_SPACE = SearchSpace()


@dataclass(frozen=True)
class Nb201Space:
    """NAS-Bench-201's space: one op per edge of the nb201 cell (node k reads each earlier node),
    6 decisions of 5 ops, 15,625 architectures."""

    name: str = "nb201"
    num_blocks: int = 3
    ops: tuple[str, ...] = ("none", "identity", "conv_1x1", "conv_3x3", "avg_pool_3x3")
    cell_kinds: tuple[str, ...] = ("normal",)

    def edges(self) -> tuple[tuple[int, int], ...]:
        """(node, the node it reads) per decision, in the benchmark's string order."""
        return tuple((node, source) for node in range(1, self.num_blocks + 1) for source in range(node))

    def decisions(self) -> tuple[Decision, ...]:
        return tuple(Decision("normal", node - 1, "op", len(self.ops)) for node, _ in self.edges())

    def to_space(self) -> Space:
        states, nodes = ["h0"], []
        for node in range(1, self.num_blocks + 1):
            edges = tuple(Edge(self.ops, (state,)) for state in states)
            nodes.append(Node(f"h{node}", ("add",), edges))
            states.append(nodes[-1].target)
        cell = SpaceCell("normal", ("h0",), tuple(nodes), ir.Output((states[-1],)))
        return Space(self.name, "nb201", (), (cell,))

    def space_hash(self) -> str:
        return _space_hash(self)

    def random_choices(self, rng: random.Random) -> list[int]:
        return [rng.randrange(len(self.ops)) for _ in self.edges()]

    def decode(
        self,
        choices: list[int] | tuple[int, ...],
        name: str = "sampled",
        metadata: tuple[ir.MetaEntry, ...] = (),
    ) -> ir.Genotype:
        edges = self.edges()
        if len(choices) != len(edges) or not all(0 <= c < len(self.ops) for c in choices):
            raise ValueError(
                f"expected {len(edges)} choices of 0 to {len(self.ops) - 1}, got {list(choices)}"
            )
        ops = dict(zip(edges, (self.ops[c] for c in choices), strict=True))
        blocks = tuple(
            ir.Block(f"h{node}", "add", tuple(ir.Operand(ops[(node, s)], f"h{s}") for s in range(node)))
            for node in range(1, self.num_blocks + 1)
        )
        cell = ir.Cell("normal", ("h0",), blocks, ir.Output((blocks[-1].target,)))
        return ir.Genotype(name, (cell,), metadata, convention="nb201")

    def encode(self, genotype: ir.Genotype) -> tuple[list[int], list[str]]:
        if genotype.convention != "nb201":
            raise ValueError(f"it is read by the {genotype.convention} convention, not nb201")
        operands = [operand.op for block in genotype.cell("normal").blocks for operand in block.operands]
        return [self.ops.index(op) for op in operands], []

    def sample(self, rng: random.Random, name: str = "sampled") -> ir.Genotype:
        return self.decode(self.random_choices(rng), name)

    def mutate(self, choices: list[int], rng: random.Random) -> tuple[list[int], str]:
        """One edge's op changed (NAS-Bench-201's evolution: the space has no hidden-state choice)."""
        child = list(choices)
        at = rng.randrange(len(child))
        old = child[at]
        child[at] = rng.choice([i for i in range(len(self.ops)) if i != old])
        node, source = self.edges()[at]
        return child, f"op normal h{node} from h{source}: {self.ops[old]} -> {self.ops[child[at]]}"


NB201_SPACE = Nb201Space()
SPACES = {"nasnet": NASNET_SPACE, "nb201": NB201_SPACE}


@functools.lru_cache(maxsize=16)
def _space_hash(space: SearchSpace | Nb201Space) -> str:
    """The hash of the space file a sampler describes: asked for every child a search writes, so
    computed once per space."""
    return space_hash(space.to_space())


def sampler(space: Space) -> SearchSpace | Nb201Space:
    """The decisions by which the sampling searches (multi-trial, ENAS, SPOS) sample a space file:
    NASNet's (per block two inputs among all earlier states, two ops and a combine, the same
    candidates everywhere; the cell outputs its unused states) or NAS-Bench-201's (one op per edge
    of a dense cell). Raises NascError at the first node of another shape."""
    if space.convention == "nb201":
        ops = space.cells[0].nodes[0].edges[0].ops
        for node in space.cells[0].nodes:
            for edge in node.edges:
                if edge.ops != ops:
                    _refuse(
                        space, edge.span, "every edge of an nb201 space the searches sample has the same ops"
                    )
        return Nb201Space(name=space.name, num_blocks=len(space.cells[0].nodes), ops=ops)
    first = space.cells[0].nodes[0] if space.cells and space.cells[0].nodes else None
    if first is None:
        _refuse(space, None, "a space the searches sample has at least one node")
    ops, combines = first.edges[0].ops, first.combines
    blocks = len(space.cells[0].nodes)
    for cell in space.cells:
        if len(cell.inputs) != len(CELL_INPUTS) or not cell.outputs_unused or len(cell.nodes) != blocks:
            _refuse(
                space,
                cell.span,
                f"the sampling searches (multi-trial, enas, spos) sample cells of two inputs and {blocks} "
                f"nodes that output their unused states (`return concat({UNUSED})`)",
            )
        states = list(cell.inputs)
        for node in cell.nodes:
            shaped = node.keep is None and len(node.edges) == 2 and node.combines == combines
            if not shaped or any(e.ops != ops or list(e.inputs) != states for e in node.edges):
                _refuse(
                    space,
                    node.span,
                    "the sampling searches (multi-trial, enas, spos) sample NASNet's blocks: two edges, "
                    "each reading any earlier state with the same candidate ops, and the same combines "
                    "in every block (a `keep` space is searched by darts and gdas)",
                )
            states.append(node.target)
    kinds = tuple(cell.kind for cell in space.cells)
    return SearchSpace(space.name, blocks, ops, combines, kinds, space.convention)


def random_cell(space: Space, rng: random.Random, name: str = "sampled") -> ir.Genotype:
    """A cell of any space drawn uniformly per decision: per node its kept edges (a `keep` node: K
    of them, in order), each an input and an op among the edge's candidates (never `none` where
    edges are ranked, as a derived cell has none), and a combine; the output as the space says,
    `unused` the states no node reads. The random baseline a one-shot search is measured against."""
    cells = []
    for cell in space.cells:
        blocks, read = [], set()
        for node in cell.nodes:
            kept = (
                node.edges
                if node.keep is None
                else sorted(rng.sample(node.edges, node.keep), key=node.edges.index)
            )
            operands = []
            for edge in kept:
                ops = [op for op in edge.ops if node.keep is None or op != "none"]
                operands.append(ir.Operand(rng.choice(ops), rng.choice(edge.inputs)))
            blocks.append(ir.Block(node.target, rng.choice(node.combines), tuple(operands)))
            read.update(operand.input for operand in operands)
        if cell.outputs_unused:
            members = tuple(block.target for block in blocks if block.target not in read)
        else:
            members = cell.output.members
        cells.append(ir.Cell(cell.kind, cell.inputs, tuple(blocks), ir.Output(members)))
    return ir.Genotype(name, tuple(cells), convention=space.convention)


def _refuse(space: Space, span, message: str):
    raise NascError([Diagnostic(message, span, space.filename or "<input>")], space.source)


def _position(cell: ir.Cell, state: str) -> int:
    """A state's place in the cell: its inputs first, then its blocks in order."""
    return (list(cell.inputs) + [block.target for block in cell.blocks]).index(state)
