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

from collections.abc import Callable
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
from nasc.compiler.emit_nb201 import CELL_ATTRIBUTES as NB201_CELL_ATTRIBUTES
from nasc.compiler.emit_nb201 import CONSTRUCTORS as NB201_CONSTRUCTORS
from nasc.compiler.emit_nb201 import network_view as nb201_network_view
from nasc.compiler.liveness import SharedRelu
from nasc.compiler.namespace import Namespace
from nasc.compiler.space_ir import Space, SpaceCell
from nasc.compiler.space_printer import format_node
from nasc.diagnostics import Diagnostic, NascError

MODULE_NAMES = (
    *emit.MODULE_NAMES,
    *"FactorizedReduce SepConv DilConv AuxHeadCIFAR AuxHeadImageNet SPACE_CELLS ZERO_OP SearchBatchNorm "
    "Zero PoolBN MixedOp LooseEnds ArchitectureWeights derive_cell_text loose_ends Supernet "
    "ResidualReduction SearchConvBN".split(),
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
    def of(name: str, ops: tuple[str, ...], candidate: Callable[[str], tuple[str, str]]) -> _MixedOpFactory:
        factory = _MixedOpFactory(name, ops)
        for op in ops:
            construct, activated = candidate(op)
            factory.constructs.append(construct)
            factory.activated.append(activated)
        return factory


def _darts_candidate(op: str) -> tuple[str, str]:
    """One candidate's construction on `c` channels at `stride`, and whether it reads relu(x)."""
    if op == "none":
        return "Zero(stride)", "False"
    if op == "identity":  # skip_connect: the state itself, or a factorized reduction when strided
        return "nn.Identity() if stride == 1 else FactorizedReduce(c, c, bn)", "stride > 1"
    construct = CONSTRUCTORS[op].format(c="c", stride="stride")
    if op in RAW_INPUT:
        return f"PoolBN({construct}, c, bn)", "False"
    return construct, "True"


def _nb201_candidate(op: str) -> tuple[str, str]:
    """NAS-Bench-201's candidates (xautodl cell_operations.OPS), C to C at stride 1: its pool has no
    batch norm after it, unlike DARTS's mixed op."""
    if op == "none":
        return "Zero(stride)", "False"
    if op == "identity":
        return "nn.Identity()", "False"
    if op == "avg_pool_3x3":
        return NB201_CONSTRUCTORS[op], "False"
    return NB201_CONSTRUCTORS[op].replace("ConvBN(", "SearchConvBN("), "True"


def _node_views(
    cell: SpaceCell,
    local: dict[str, str],
    locals_: Namespace,
    attributes: Namespace,
    factories: dict[tuple, _MixedOpFactory],
    label: str,
    strided: bool,
) -> list[_NodeView]:
    """Each node's edges, one per state an edge may read, in the order of α's rows; `strided`:
    what reads the cell's inputs runs at stride 2 (a reduction cell)."""
    relu = SharedRelu(locals_)
    views, row = [], 0
    for node in cell.nodes:
        edges, activations = [], []
        picks = any(len(edge.inputs) > 1 for edge in node.edges)
        for slot, edge in enumerate(node.edges):
            for state in edge.inputs:
                stride = 2 if strided and state in cell.inputs else 1
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
        views.append(_NodeView(comment, locals_.name(node.target), edges, activations))
        local[node.target] = views[-1].local
    return views


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
    view.nodes = _node_views(cell, local, locals_, attributes, factories, label, reduction)
    if cell.outputs_unused:
        view.outputs = [local[node.target] for node in cell.nodes]
    else:
        view.outputs = [local[member] for member in cell.output.members]
    return view


@dataclass
class _Nb201CellView:
    kind: str
    class_name: str
    location: str
    input: str
    nodes: list[_NodeView]
    output: str


def _nb201_cell_view(
    cell: SpaceCell, class_name: str, label: str, factories: dict[tuple, _MixedOpFactory]
) -> _Nb201CellView:
    attributes = Namespace(NB201_CELL_ATTRIBUTES)
    locals_ = Namespace((*MODULE_NAMES, "self", "weights", "path"))
    local = {cell.inputs[0]: locals_.name(cell.inputs[0])}
    nodes = _node_views(cell, local, locals_, attributes, factories, label, strided=False)
    where, output = location(label, cell.span), local[cell.output.members[0]]
    return _Nb201CellView(cell.kind, class_name, where, local[cell.inputs[0]], nodes, output)


def check_supernet_space(space: Space) -> None:
    """Raises NascError at the first node a supernet cannot hold: a combine other than `add` (a
    concatenation's width would change with the path), or an op the search network has no module for."""
    candidates = ("none", "identity", *(NB201_CONSTRUCTORS if space.convention == "nb201" else CONSTRUCTORS))
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
                unknown = [op for op in edge.ops if op not in candidates]
                if unknown:
                    _refuse(
                        space,
                        edge.span or node.span,
                        f"the search network has no candidate module for {', '.join(unknown)}",
                        f"a {space.convention} supernet's candidates: {', '.join(dict.fromkeys(candidates))}",
                    )


def _refuse(space: Space, span, message: str, hint: str):
    diagnostic = Diagnostic(message, span, space.filename or "<input>", hint=hint)
    raise NascError([diagnostic], space.source)


def emit_supernet(compilation: Compilation) -> str:
    space: Space = compilation.genotype
    check_supernet_space(space)
    names = Namespace(MODULE_NAMES)
    nb201 = space.convention == "nb201"
    factories: dict[tuple, _MixedOpFactory] = {}
    for cell in space.cells:
        ops = cell_ops(cell)
        if ops not in factories:
            name = names.name(("mixed_op", ops), "mixed_op" if not factories else f"mixed_op_{cell.kind}")
            factories[ops] = _MixedOpFactory.of(name, ops, _nb201_candidate if nb201 else _darts_candidate)
    view = (_nb201_view if nb201 else _darts_view)(compilation, names, factories)
    view.extra = {
        "space_cells": [_SpaceCellData.of(cell) for cell in space.cells],
        "mixed_ops": list(factories.values()),
        "partial_channels": compilation.options.partial_channels,
        "family_blocks": "nb201/blocks.py.jinja" if nb201 else "darts/blocks.py.jinja",
        "nb201": nb201,
    }
    return render_module(compilation, view)


def _darts_view(compilation: Compilation, names: Namespace, factories: dict) -> ModuleView:
    space, label = compilation.genotype, source_label(compilation)
    class_names = cell_classes(compilation, names, "MixedCell")
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
    return ModuleView(
        description="The weight-sharing search network of quark0/darts cnn/model_search.py (Liu et al. "
        "2019) over this space:\n`search` is its Network(C = 16, num_classes = 10, layers = 8). "
        f"Presets: {', '.join(compilation.networks)}.",
        blocks_template="supernet/blocks.py.jinja",
        cell_template="supernet/cell.py.jinja",
        cells=cells,
        networks=networks,
    )


def _nb201_view(compilation: Compilation, names: Namespace, factories: dict) -> ModuleView:
    cell = compilation.genotype.cell("normal")
    class_name = names.name(("cell", cell.kind), "NormalMixedCell")
    networks = network_views(
        compilation,
        names,
        lambda name, preset, plan, network_class, title: nb201_network_view(
            name, preset, plan, class_name, network_class, title, supernet=SEARCH_BN
        ),
    )
    return ModuleView(
        description="The weight-sharing search network of NAS-Bench-201 (Dong & Yang 2020; xautodl "
        "models/cell_searchs\nTinyNetworkDarts) over this space: `search` is TinyNetworkDarts(C = 16, "
        f"N = 5, max_nodes = 4, 10 classes). Presets: {', '.join(compilation.networks)}.",
        blocks_template="supernet/blocks.py.jinja",
        cell_template="supernet/nb201_cell.py.jinja",
        cells=[_nb201_cell_view(cell, class_name, source_label(compilation), factories)],
        networks=networks,
    )
