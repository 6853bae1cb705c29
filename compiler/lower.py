"""Lowering: a checked cell, read under the NASNet convention, becomes a fully specified cell graph.

The graph is symbolic in the two numbers that vary between instances of one cell kind in a network:
the cell's filter count F, and the channels of h1 (F, unless the cell has no x2 — the first cell
after a stem — where h1 is the raw x1). Every op gets its input channels and stride; every place
where the convention inserts an adapter is named. `realize` evaluates the graph for one concrete
instance and lists the adapters that instance really has.

The rules (docs/reference.md, "Cell inputs and blocks" and "Operations"; TF-slim nasnet_utils.py):
  - h0 = ReLU → 1x1 conv → BN of x1 (the squeeze); h1 = x2 adjusted to F channels at x1's size.
  - Ops on h0/h1 run at the cell's stride, ops on block states at stride 1; every op outputs F.
  - identity becomes ReLU → 1x1 conv (stride) → BN when the stride is > 1 or C_in ≠ F; a pool is
    followed by 1x1 conv → BN when C_in ≠ F.
  - An output member whose channels or size differ from the last block's goes through a factorized
    reduction (no ReLU) to the last block's channels; the cell outputs their concatenation.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from nasc.compiler import ir
from nasc.compiler.conventions import convention_of
from nasc.compiler.printer import format_block
from nasc.compiler.registry import COMBINES, OPS, CombineSpec, OpSpec
from nasc.diagnostics import Span


@dataclass(frozen=True)
class Channels:
    """A channel count: `filters`·F, or the channels of h1 when `h1` is set."""

    filters: int = 0
    h1: bool = False

    def value(self, filters: int, h1_channels: int) -> int:
        return h1_channels if self.h1 else self.filters * filters

    def describe(self) -> str:
        if self.h1:
            return "C(h1)"
        return "F" if self.filters == 1 else f"{self.filters}F"


F = Channels(1)
H1 = Channels(h1=True)


@dataclass(frozen=True)
class OpNode:
    attr: str  # base name of the module attribute, e.g. "h2_left"
    spec: OpSpec
    state: str  # the state the op reads
    in_channels: Channels
    stride: int
    span: Span | None = None


@dataclass(frozen=True)
class BlockNode:
    target: str
    combine: CombineSpec
    operands: tuple[OpNode, ...]
    channels: Channels
    norm_attr: str | None  # the normalization module of add_layernorm / add_instancenorm
    source: str  # the block's DSL line, canonical
    span: Span | None = None


@dataclass(frozen=True)
class OutputNode:
    member: str
    channels: Channels
    stride: int  # 2 when the member is a cell input of a strided cell: it is at the larger size
    adapter_attr: str | None  # present wherever some instance may need a factorized reduction


@dataclass(frozen=True)
class CellGraph:
    kind: str
    stride: int
    inputs: tuple[str, str]  # (h0: squeezed x1, h1: adjusted x2)
    blocks: tuple[BlockNode, ...]
    outputs: tuple[OutputNode, ...]
    final_channels: Channels  # the last block's channels: every output member is brought to it
    span: Span | None = None

    @property
    def out_channels_per_filter(self) -> int:
        """Output channels in units of F (6 for NASNet-A's normal cell: P = 24·F0)."""
        return len(self.outputs) * self.final_channels.filters


def lower_cell(
    cell: ir.Cell, stride: int, filename: str | None = None, specs: Mapping[str, OpSpec] = OPS
) -> CellGraph:
    """One cell read at `stride` (ops on its inputs run strided), each op meaning what `specs` say."""
    h0, h1 = cell.inputs
    channels: dict[str, Channels] = {h0: F, h1: H1}
    blocks = []
    for block in cell.blocks:
        operands = tuple(
            OpNode(
                attr=f"{block.target}_{side}",
                spec=specs[operand.op],
                state=operand.input,
                in_channels=channels[operand.input],
                stride=stride if operand.input in cell.inputs else 1,
                span=operand.span,
            )
            for side, operand in zip(_sides(len(block.operands)), block.operands, strict=True)
        )
        combine = COMBINES[block.combine]
        # Every op maps its input to F channels (the registry's shape rule), so the `same` combines
        # always agree and concat stacks its operands.
        block_channels = F if combine.channels == "same" else Channels(len(operands))
        channels[block.target] = block_channels
        norm = f"{block.target}_norm" if combine.normalization else None
        blocks.append(
            BlockNode(block.target, combine, operands, block_channels, norm, format_block(block), block.span)
        )
    final = blocks[-1].channels
    outputs = []
    for member in cell.output.members:
        member_stride = stride if member in cell.inputs else 1
        may_differ = member == h1 or channels[member] != final or member_stride > 1
        outputs.append(
            OutputNode(member, channels[member], member_stride, f"out_{member}" if may_differ else None)
        )
    return CellGraph(cell.kind, stride, (h0, h1), tuple(blocks), tuple(outputs), final, cell.span)


def _sides(count: int) -> tuple[str, ...]:
    return ("left", "right") if count == 2 else tuple(f"op{i}" for i in range(count))


# The two roles a cell plays in a NASNet-family network, and the stride it plays each at.
ROLES = (("normal", 1), ("reduction", 2))


def lower(genotype: ir.Genotype) -> dict[str, CellGraph]:
    """The cell graph of each role. NASNet reads its `normal` and `reduction` cells; PNASNet reads its
    one cell in both roles, at stride 1 and at stride 2."""
    convention = convention_of(genotype)
    kinds = dict(convention.roles)
    specs = {**OPS, **convention.op_specs}
    return {
        role: lower_cell(genotype.cell(kinds[role]), stride, genotype.filename, specs)
        for role, stride in ROLES
    }


# -- one concrete instance ------------------------------------------------------------------------


class Adapter(StrEnum):
    """What an adapter of a realized cell is (the modules that are not the cell's ops)."""

    RELU_CONV_BN = "relu_conv_bn"  # x1's squeeze; x2 brought to F channels
    RELU_FACTORIZED_REDUCTION = "relu_factorized_reduction"  # x2 at twice x1's size
    X2_AS_IS = "identity"  # x2 already has F channels at x1's size: h1 is x2
    NO_X2 = "no_x2"  # the first cell after a stem has no x2: h1 is x1
    FACTORIZED_REDUCTION = "factorized_reduction"  # an output member brought to the last block's shape


@dataclass(frozen=True)
class CellModule:
    """One module of a realized cell: its attribute, what it is, its channels and stride."""

    attr: str
    what: Adapter | str  # an adapter, an op's name ("sep_conv_3x3") or a norm ("layer_norm")
    in_channels: int
    out_channels: int
    stride: int
    adapters: tuple[
        str, ...
    ] = ()  # adapters inside an op: "1x1 conv" for identity, "1x1 projection" for pools


@dataclass(frozen=True)
class RealizedCell:
    graph: CellGraph
    filters: int
    h1_channels: int
    modules: tuple[CellModule, ...]

    @property
    def out_channels(self) -> int:
        return self.graph.out_channels_per_filter * self.filters


def realize(
    graph: CellGraph, filters: int, x1_channels: int, x2_channels: int | None, reduce_x2: bool
) -> RealizedCell:
    """The modules one instance of the cell has, adapters included, with concrete numbers."""
    modules = [CellModule("squeeze_x1", Adapter.RELU_CONV_BN, x1_channels, filters, 1)]
    if x2_channels is None:
        h1_channels = x1_channels
        modules.append(CellModule("adjust_x2", Adapter.NO_X2, x1_channels, x1_channels, 1))
    elif reduce_x2:
        h1_channels = filters
        modules.append(CellModule("adjust_x2", Adapter.RELU_FACTORIZED_REDUCTION, x2_channels, filters, 2))
    elif x2_channels != filters:
        h1_channels = filters
        modules.append(CellModule("adjust_x2", Adapter.RELU_CONV_BN, x2_channels, filters, 1))
    else:
        h1_channels = filters
        modules.append(CellModule("adjust_x2", Adapter.X2_AS_IS, x2_channels, filters, 1))
    for block in graph.blocks:
        for op in block.operands:
            c_in = op.in_channels.value(filters, h1_channels)
            adapters: tuple[str, ...] = ()
            if op.spec.family == "identity" and (op.stride > 1 or c_in != filters):
                adapters = ("relu_conv_bn 1x1",)
            elif op.spec.family == "pool" and c_in != filters:
                adapters = ("conv_bn 1x1",)
            modules.append(CellModule(op.attr, op.spec.name, c_in, filters, op.stride, adapters))
        if block.norm_attr:
            width = block.channels.value(filters, h1_channels)
            modules.append(
                CellModule(block.norm_attr, block.combine.normalization + "_norm", width, width, 1)
            )
    final = graph.final_channels.value(filters, h1_channels)
    for output in graph.outputs:
        c_in = output.channels.value(filters, h1_channels)
        if output.adapter_attr and (c_in != final or output.stride > 1):
            modules.append(
                CellModule(output.adapter_attr, Adapter.FACTORIZED_REDUCTION, c_in, final, output.stride)
            )
    return RealizedCell(graph, filters, h1_channels, tuple(modules))
