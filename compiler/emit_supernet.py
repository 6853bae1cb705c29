"""The supernet backend of the emitter (compiler/emit.py): a space compiled into a weight-sharing
search network on DARTS's skeleton — for a DARTS space, quark0/darts cnn/model_search.py (`Network`,
`Cell`, `MixedOp`), exactly.

Each edge of the space is one `MixedOp` attribute per state it may read, holding every candidate op
(ENAS's sharing: a block's weights are indexed by the state it reads); each node the sum of its
edges; the network is the DARTS skeleton (compiler/darts_skeleton.py) with the space's cells, the
cells' batch norms without affine weights, and the architecture weights α apart from the rest
(`arch_parameters()`, `weights()`, built last so that the state_dict maps to the reference's by
position). A cell that outputs its unused states (NASNet's, ENAS's) ends in ENAS's projection: a
1x1 convolution of each loose end, summed, so that its width is C whichever path runs. `derive()`
returns the .cell text of the architecture α selects.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from nasc.compiler import emit
from nasc.compiler.compilation import Compilation
from nasc.compiler.conventions.darts import DARTS
from nasc.compiler.emit import ModuleView, line_comment, location, network_views, render_module, source_label
from nasc.compiler.emit_darts import (
    CELL_ATTRIBUTES,
    CONSTRUCTORS,
    RAW_INPUT,
    CellHead,
    cell_classes,
    network_view,
)
from nasc.compiler.liveness import SharedRelu
from nasc.compiler.namespace import Namespace
from nasc.compiler.space_ir import Space, SpaceCell
from nasc.compiler.space_printer import format_node
from nasc.diagnostics import Diagnostic, NascError

MODULE_NAMES = (
    *emit.MODULE_NAMES,
    *"FactorizedReduce SepConv DilConv AuxHeadCIFAR AuxHeadImageNet SPACE_CELLS ZERO_OP SearchBatchNorm "
    "Zero PoolBN MixedOp LooseEnds ArchitectureWeights derive_cell_text loose_ends Supernet".split(),
)
# The reference's cells pass `affine=False` to every op and preprocessing: their batch norms.
SEARCH_BN = "SearchBatchNorm(eps=1e-05, momentum=0.1)"


@dataclass
class _EdgeView:
    attr: str
    construct: str
    source: str  # the state's local
    relu: str  # its relu's local, or the state where no candidate reads relu(state)
    row: int  # the edge's row of the architecture weights


@dataclass
class _NodeView:
    comment: str
    local: str
    edges: list[_EdgeView]
    activations: list[tuple[str, str]]


@dataclass
class _CellView(CellHead):
    nodes: list[_NodeView] = field(default_factory=list)
    # The attribute of the 1x1 projection where the cell outputs the states no edge of the path
    # reads (NASNet's unused states), each projected to C and summed; "": it names its outputs.
    loose_ends: str = ""


@dataclass
class _SpaceCellData:
    """A cell of the space as the emitted SPACE_CELLS holds it."""

    kind: str
    inputs: tuple[str, ...]
    ops: tuple[str, ...]
    nodes: list[tuple[str, tuple[str, ...], tuple[int, ...], int | None]]
    output: tuple[str, ...]

    @staticmethod
    def of(cell: SpaceCell) -> _SpaceCellData:
        nodes = []
        for node in cell.nodes:
            rows = [(slot, state) for slot, edge in enumerate(node.edges) for state in edge.inputs]
            reads = tuple(state for _, state in rows)
            nodes.append((node.target, reads, tuple(slot for slot, _ in rows), node.keep))
        return _SpaceCellData(cell.kind, cell.inputs, cell_ops(cell), nodes, cell.output.members)


def cell_ops(cell: SpaceCell) -> tuple[str, ...]:
    """The candidates every edge of the cell shares (the columns of its architecture weights)."""
    ops = {edge.ops for node in cell.nodes for edge in node.edges}
    if len(ops) != 1:
        raise ValueError(
            f"the {cell.kind} cell's edges have different candidate ops; a supernet's architecture "
            "weights are one table per cell: give every edge the same set"
        )
    return ops.pop()


@dataclass
class _MixedOpFactory:
    """An emitted function that builds an edge over one tuple of candidates, at any stride."""

    name: str
    ops: tuple[str, ...]
    constructs: list[str] = field(default_factory=list)
    activated: list[str] = field(default_factory=list)  # per candidate: reads relu(x), as code

    @staticmethod
    def of(name: str, ops: tuple[str, ...]) -> _MixedOpFactory:
        factory = _MixedOpFactory(name, ops)
        for op in ops:
            construct, activated = _candidate(op)
            factory.constructs.append(construct)
            factory.activated.append(activated)
        return factory


def _candidate(op: str) -> tuple[str, str]:
    """One candidate's construction on `c` channels at `stride`, and whether it reads relu(x)."""
    if op == "none":
        return "Zero(stride)", "False"
    if op == "identity":  # skip_connect: the state itself, or a factorized reduction when strided
        return "nn.Identity() if stride == 1 else FactorizedReduce(c, c, bn)", "stride > 1"
    construct = CONSTRUCTORS[op].format(c="c", stride="stride")
    if op in RAW_INPUT:
        return f"PoolBN({construct}, c, bn)", "False"
    return construct, "True"


def _cell_view(
    cell: SpaceCell,
    reduction_prev: bool,
    class_name: str,
    label: str,
    factories: dict[tuple, _MixedOpFactory],
) -> _CellView:
    attributes = Namespace(CELL_ATTRIBUTES)
    locals_ = Namespace((*MODULE_NAMES, "self", "relu_x0", "relu_x1", "weights", "path"))
    reduction = DARTS.stride(cell.kind) > 1
    local = {name: locals_.name(name) for name in cell.inputs}
    view = _CellView(
        cell.kind,
        class_name,
        location(label, cell.span),
        reduction,
        reduction_prev,
        local[cell.inputs[0]],
        local[cell.inputs[1]],
    )
    if cell.outputs_unused:
        view.loose_ends, view.multiplier = attributes.name(("output",), "output_conv"), 1
    relu = SharedRelu(locals_)
    row = 0
    for node in cell.nodes:
        edges, activations = [], []
        picks = any(len(edge.inputs) > 1 for edge in node.edges)
        for slot, edge in enumerate(node.edges):
            for state in edge.inputs:
                stride = 2 if reduction and state in cell.inputs else 1
                construct = f"{factories[edge.ops].name}(c, stride={stride}, bn=bn)"
                hint = f"{node.target}_{slot}_{state}" if picks else f"{node.target}_{state}"
                attr = attributes.name(("edge", node.target, slot, state), hint)
                source = local[state]
                reads_relu = any(
                    a == "True" or (a == "stride > 1" and stride > 1) for a in factories[edge.ops].activated
                )
                relu_local = relu.of(state, source, activations) if reads_relu else source
                edges.append(_EdgeView(attr, construct, source, relu_local, row))
                row += 1
        comment = line_comment(label, node.span, format_node(node))
        view.nodes.append(_NodeView(comment, locals_.name(node.target), edges, activations))
        local[node.target] = view.nodes[-1].local
    if cell.outputs_unused:
        view.outputs = [local[node.target] for node in cell.nodes]
    else:
        view.outputs = [local[member] for member in cell.output.members]
    return view


def check_supernet_space(space: Space) -> None:
    """Raises NascError at the first node a supernet cannot hold: a combine other than `add` (a
    concatenation's width would change with the path), or an op the search network has no module for."""
    for cell in space.cells:
        for node in cell.nodes:
            if node.combines != ("add",):
                _refuse(
                    space,
                    node.span,
                    f"a supernet sums each node's edges; {node.target} may `{', '.join(node.combines)}`",
                    "give the node `add` alone (a concatenation's width would change with the path)",
                )
            for edge in node.edges:
                unknown = [op for op in edge.ops if op not in CONSTRUCTORS and op != "none"]
                if unknown:
                    _refuse(
                        space,
                        edge.span or node.span,
                        f"the search network has no candidate module for {', '.join(unknown)}",
                        f"a supernet's candidates: none, {', '.join(CONSTRUCTORS)}",
                    )


def _refuse(space: Space, span, message: str, hint: str):
    diagnostic = Diagnostic(message, span, space.filename or "<input>", hint=hint)
    raise NascError([diagnostic], space.source)


def emit_supernet(compilation: Compilation) -> str:
    space: Space = compilation.genotype
    check_supernet_space(space)
    names = Namespace(MODULE_NAMES)
    label = source_label(compilation)
    class_names = cell_classes(compilation, names, "MixedCell")
    factories: dict[tuple, _MixedOpFactory] = {}
    for cell in space.cells:
        ops = cell_ops(cell)
        if ops not in factories:
            name = names.name(("mixed_op", ops), "mixed_op" if not factories else f"mixed_op_{cell.kind}")
            factories[ops] = _MixedOpFactory.of(name, ops)
    cells = [
        _cell_view(space.cell(kind), after, class_names[(kind, after)], label, factories)
        for kind, after in class_names
    ]
    networks = network_views(
        compilation,
        names,
        lambda name, preset, plan, class_name, title: network_view(
            name, preset, plan, class_names, class_name, title, supernet=SEARCH_BN
        ),
    )
    view = ModuleView(
        description="The weight-sharing search network of quark0/darts cnn/model_search.py (Liu et al. "
        "2019) over this space:\n`search` is its Network(C = 16, num_classes = 10, layers = 8). "
        f"Presets: {', '.join(compilation.networks)}.",
        blocks_template="supernet/blocks.py.jinja",
        cell_template="supernet/cell.py.jinja",
        cells=cells,
        networks=networks,
        extra={
            "space_cells": [_SpaceCellData.of(cell) for cell in space.cells],
            "mixed_ops": list(factories.values()),
            "partial_channels": compilation.options.partial_channels,
        },
    )
    return render_module(compilation, view)
